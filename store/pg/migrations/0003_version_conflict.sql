-- hdf_version_conflict raises the error an append reports when its stream
-- is not at the expected version. Appends travel in the same pipeline as
-- the COMMIT, so a conflict must abort the transaction rather than merely
-- insert nothing.
CREATE FUNCTION hdf_version_conflict(stream uuid, expected bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = 'HDF01',
        MESSAGE = format('stream %s is not at version %s', stream, expected);
END $$;
