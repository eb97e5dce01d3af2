// Package opendsr holds the OpenDSR (formerly OpenGDPR) wire format that
// dsrflow speaks: request and response types with their JSON field names,
// decoding and validation of incoming requests, the error object, identity
// normalisation and hashing, statutory due times, and the RSA signatures
// carried by every response and callback.
//
// Nothing in this package performs network I/O. Error objects built here
// never contain identity values or other submitted values that could be
// personal data: they name the offending field and the reason only.
package opendsr
