package eventstore

// DecodeMetadata exports decodeMetadata to the tests.
var DecodeMetadata = decodeMetadata
