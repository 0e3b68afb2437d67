-- merged_into is the id of the customer this one was merged into, '' while
-- it stands on its own; customer lists leave merged customers out.
ALTER TABLE customers ADD COLUMN merged_into String DEFAULT ''
