package commands

import "encoding/json"

// Nullable is a JSON field of an update that distinguishes "absent" (leave
// the value alone: Set is false) from null (clear it: Set is true, Value
// nil) and a value (Set is true, Value set).
type Nullable[T any] struct {
	Set   bool
	Value *T
}

// UnmarshalJSON implements json.Unmarshaler; it is only called when the
// field is present.
func (n *Nullable[T]) UnmarshalJSON(b []byte) error {
	n.Set = true
	if string(b) == "null" {
		n.Value = nil
		return nil
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	n.Value = &v
	return nil
}
