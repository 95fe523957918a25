package invalidation

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// The wire format is one small JSON object per Redis message:
//
//		{"v":1,"from":"<32 hex digits>","tags":["<base64>",...],"gap":true}
//
//	  - v is the format version; a message of any other version is ignored
//	    (and counted as malformed), so a future format must keep sending v1
//	    while replicas of both versions run.
//	  - from is the publishing Bus's random instance id (16 bytes, hex); a
//	    replica ignores the messages it sent itself.
//	  - tags are the invalidation tags, each base64 (standard alphabet, with
//	    padding), so binary digests cross intact. Tags are what the module
//	    already computes: "c\x00"+sha256 of a credential, "t\x00"+sha256 of a
//	    session token, "u\x00"+user id, "o\x00*". No token, cookie or session
//	    data is ever in a message; the bus only carries what it is given, so
//	    callers must publish tags, never raw credentials.
//	  - gap, when true, says the sender lost invalidations of its own since
//	    its last message (queue overflow, failed PUBLISH): receivers treat it
//	    like their own reconnect and call Options.OnReconnect.
//
// A message is at most maxMessageBytes, carries 1..maxTags tags, each
// 1..maxTagBytes bytes once decoded. Anything else is ignored and counted.
const (
	wireVersion     = 1
	maxMessageBytes = 64 << 10
	maxTags         = 1024
	maxTagBytes     = 1024
	instanceIDBytes = 16
)

type wireMessage struct {
	V    int      `json:"v"`
	From string   `json:"from"`
	Tags []string `json:"tags"`
	Gap  bool     `json:"gap,omitempty"`
}

// envelopeBytes bounds the JSON around the tags of a message.
const envelopeBytes = len(`{"v":1,"from":"","tags":[],"gap":true}`) + 2*instanceIDBytes

// encodedTagBytes is what one tag adds to a message: its base64, two
// quotes and a comma.
func encodedTagBytes(tag string) int { return base64.StdEncoding.EncodedLen(len(tag)) + 3 }

func encode(from string, tags []string, gap bool) ([]byte, error) {
	m := wireMessage{V: wireVersion, From: from, Tags: make([]string, len(tags)), Gap: gap}
	for i, t := range tags {
		m.Tags[i] = base64.StdEncoding.EncodeToString([]byte(t))
	}
	return json.Marshal(m)
}

var errMalformed = errors.New("malformed invalidation message")

// decode validates a message and returns its sender, its tags decoded, and
// its gap flag.
func decode(payload string) (from string, tags []string, gap bool, err error) {
	if len(payload) > maxMessageBytes {
		return "", nil, false, fmt.Errorf("%w: %d bytes", errMalformed, len(payload))
	}
	var m wireMessage
	if err := json.Unmarshal([]byte(payload), &m); err != nil {
		return "", nil, false, fmt.Errorf("%w: %v", errMalformed, err)
	}
	if m.V != wireVersion {
		return "", nil, false, fmt.Errorf("%w: version %d", errMalformed, m.V)
	}
	if !validInstanceID(m.From) {
		return "", nil, false, fmt.Errorf("%w: bad sender id", errMalformed)
	}
	if len(m.Tags) == 0 || len(m.Tags) > maxTags {
		return "", nil, false, fmt.Errorf("%w: %d tags", errMalformed, len(m.Tags))
	}
	tags = make([]string, len(m.Tags))
	for i, s := range m.Tags {
		if len(s) > base64.StdEncoding.EncodedLen(maxTagBytes) {
			return "", nil, false, fmt.Errorf("%w: tag too long", errMalformed)
		}
		b, err := base64.StdEncoding.Strict().DecodeString(s)
		if err != nil || len(b) == 0 || len(b) > maxTagBytes {
			return "", nil, false, fmt.Errorf("%w: bad tag", errMalformed)
		}
		tags[i] = string(b)
	}
	return m.From, tags, m.Gap, nil
}

func validInstanceID(s string) bool {
	if len(s) != 2*instanceIDBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
