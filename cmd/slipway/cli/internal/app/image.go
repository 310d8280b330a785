package app

// ImageJSON is what `image build --json` reports.
type ImageJSON struct {
	Digest    string   `json:"digest"`
	Reference string   `json:"reference,omitempty"`
	Platforms []string `json:"platforms"`
	Layout    string   `json:"ociLayout,omitempty"`
	Tarball   string   `json:"tarball,omitempty"`
	Seconds   float64  `json:"seconds"`
}
