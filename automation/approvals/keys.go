package approvals

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// Decisions are signed with Ed25519: the server (`slipway serve`) holds
// the private key and signs each decision it records; the waiting gate
// holds only the public key, so neither the gate's process nor anyone with
// write access to the backend can make a decision the gate accepts.

// signedPrefix versions the canonical encoding of a decision.
const signedPrefix = "slipway-approval-decision-v1\n"

// signed is the canonical encoding of a decision that its signature
// covers: every field but the signature, in a fixed order.
func signed(d Decision) []byte {
	b, _ := json.Marshal(struct {
		ID      string `json:"id"`
		Status  Status `json:"status"`
		Decided string `json:"decided"`
		By      string `json:"by"`
		Via     string `json:"via"`
		Request string `json:"request"`
	}{d.ID, d.Status, d.Decided.UTC().Format(time.RFC3339Nano), d.By, d.Via, d.Request})
	return append([]byte(signedPrefix), b...)
}

// Errors of decision verification.
var (
	// ErrUnsigned: the decision carries no signature.
	ErrUnsigned = errors.New("approvals: the decision is not signed")
	// ErrBadSignature: the signature does not verify with the public key
	// (forged, altered, or signed with another key).
	ErrBadSignature = errors.New("approvals: the decision's signature does not verify")
	// ErrOtherRequest: the decision is for another request record (the
	// request was rewritten after the gate recorded it).
	ErrOtherRequest = errors.New("approvals: the decision is for a different request than the one recorded")
	// ErrNoVerifyKey: the gate has no public key to check decisions with.
	ErrNoVerifyKey = errors.New("approvals: no public key to verify decisions with; give the gate the server's public key (slipway promote --approval-public-key-file)")
)

// VerifyDecision checks that d is signed with the private key of pub and
// is for the request record whose digest is request. Errors wrap
// ErrUnsigned, ErrBadSignature, ErrOtherRequest or ErrNoVerifyKey.
func VerifyDecision(d Decision, pub ed25519.PublicKey, request string) error {
	if len(pub) != ed25519.PublicKeySize {
		return ErrNoVerifyKey
	}
	if d.Signature == "" {
		return fmt.Errorf("%w: request %s", ErrUnsigned, d.ID)
	}
	sig, err := base64.StdEncoding.DecodeString(d.Signature)
	if err != nil || !ed25519.Verify(pub, signed(d), sig) {
		return fmt.Errorf("%w: request %s", ErrBadSignature, d.ID)
	}
	if d.Request != request {
		return fmt.Errorf("%w: request %s", ErrOtherRequest, d.ID)
	}
	return nil
}

// ParsePrivateKey reads the server's signing key: a PEM "PRIVATE KEY"
// block (PKCS #8) holding an Ed25519 key, as written by
// `openssl genpkey -algorithm ed25519`.
func ParsePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PEM PRIVATE KEY block; create one with: openssl genpkey -algorithm ed25519 -out approval-key.pem")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("not a PKCS #8 private key: %v", err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T, not an Ed25519 key; create one with: openssl genpkey -algorithm ed25519", k)
	}
	return ek, nil
}

// ParsePublicKey reads the key the gate verifies with: a PEM "PUBLIC KEY"
// block (PKIX) holding an Ed25519 key, as written by
// `openssl pkey -in approval-key.pem -pubout`. A private key is refused:
// the gate must not hold what signs approvals.
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk != nil && blk.Type == "PRIVATE KEY" {
		return nil, errors.New("holds a private key; give the gate only the public key (openssl pkey -in approval-key.pem -pubout -out approval-key.pub)")
	}
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, errors.New("not a PEM PUBLIC KEY block; derive it from the server's key with: openssl pkey -in approval-key.pem -pubout")
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("not a PKIX public key: %v", err)
	}
	ek, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("a %T, not an Ed25519 key", k)
	}
	return ek, nil
}
