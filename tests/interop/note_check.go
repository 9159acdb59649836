// Command note_check lets the test suite check cmp's signed notes against Go's golang.org/x/mod/sumdb/note.
//
// It reads one JSON request on standard input and writes one JSON answer on standard output:
//
//	{"op": "open", "note": "...", "vkeys": ["name+hash+key", ...]}
//	  -> {"ok": true, "text": "...", "verified": ["name+hash", ...]} or {"ok": false, "error": "..."}
//	{"op": "sign", "name": "...", "text": "..."}
//	  -> {"ok": true, "skey": "...", "vkey": "...", "note": "..."} with a key made by note.GenerateKey
package main

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"

	"golang.org/x/mod/sumdb/note"
)

type request struct {
	Op    string   `json:"op"`
	Note  string   `json:"note"`
	VKeys []string `json:"vkeys"`
	Name  string   `json:"name"`
	Text  string   `json:"text"`
}

type answer struct {
	OK       bool     `json:"ok"`
	Error    string   `json:"error,omitempty"`
	Text     string   `json:"text,omitempty"`
	Verified []string `json:"verified,omitempty"`
	SKey     string   `json:"skey,omitempty"`
	VKey     string   `json:"vkey,omitempty"`
	Note     string   `json:"note,omitempty"`
}

func open(req request) answer {
	var verifiers []note.Verifier
	for _, vkey := range req.VKeys {
		v, err := note.NewVerifier(vkey)
		if err != nil {
			return answer{Error: fmt.Sprintf("verifier key %q: %v", vkey, err)}
		}
		verifiers = append(verifiers, v)
	}
	n, err := note.Open([]byte(req.Note), note.VerifierList(verifiers...))
	if err != nil {
		return answer{Error: err.Error()}
	}
	verified := []string{}
	for _, sig := range n.Sigs {
		verified = append(verified, fmt.Sprintf("%s+%08x", sig.Name, sig.Hash))
	}
	return answer{OK: true, Text: n.Text, Verified: verified}
}

func sign(req request) answer {
	skey, vkey, err := note.GenerateKey(rand.Reader, req.Name)
	if err != nil {
		return answer{Error: err.Error()}
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return answer{Error: err.Error()}
	}
	msg, err := note.Sign(&note.Note{Text: req.Text}, signer)
	if err != nil {
		return answer{Error: err.Error()}
	}
	return answer{OK: true, SKey: skey, VKey: vkey, Note: string(msg)}
}

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "reading request:", err)
		os.Exit(2)
	}
	var ans answer
	switch req.Op {
	case "open":
		ans = open(req)
	case "sign":
		ans = sign(req)
	default:
		fmt.Fprintf(os.Stderr, "unknown op %q\n", req.Op)
		os.Exit(2)
	}
	if err := json.NewEncoder(os.Stdout).Encode(ans); err != nil {
		fmt.Fprintln(os.Stderr, "writing answer:", err)
		os.Exit(2)
	}
}
