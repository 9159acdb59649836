// Command tlog_check has Go's golang.org/x/mod/sumdb/tlog judge what cmp's Merkle tree produces.
//
// It reads one JSON request on stdin: the records of a log, the trees (sizes) to check with the inclusion and
// consistency proofs cmp made for them, and tiles to describe. It writes one JSON response on stdout: for each
// tree the hash Go computes from the records and, for each proof, "" when Go accepts it or Go's error; for each
// tile, Go's path and the tile data Go reads from its own stored hashes (or why it cannot).
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"golang.org/x/mod/sumdb/tlog"
)

type inclusion struct {
	Index int64    `json:"index"`
	Proof [][]byte `json:"proof"`
}

type consistency struct {
	Old   int64    `json:"old"`
	Proof [][]byte `json:"proof"`
}

type tree struct {
	Size        int64         `json:"size"`
	Inclusion   []inclusion   `json:"inclusion"`
	Consistency []consistency `json:"consistency"`
}

type tile struct {
	Level int   `json:"level"`
	Index int64 `json:"index"`
	Width int   `json:"width"`
}

type request struct {
	Records [][]byte `json:"records"`
	Trees   []tree   `json:"trees"`
	Tiles   []tile   `json:"tiles"`
}

type treeResult struct {
	Size        int64    `json:"size"`
	Hash        []byte   `json:"hash"`
	Inclusion   []string `json:"inclusion"`
	Consistency []string `json:"consistency"`
}

type tileResult struct {
	Path  string `json:"path"`
	Data  []byte `json:"data"`
	Error string `json:"error"`
}

type response struct {
	Trees []treeResult `json:"trees"`
	Tiles []tileResult `json:"tiles"`
}

func hashes(proof [][]byte) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(proof))
	for i, h := range proof {
		if len(h) != tlog.HashSize {
			return nil, fmt.Errorf("proof hash %d has %d bytes", i, len(h))
		}
		copy(out[i][:], h)
	}
	return out, nil
}

func verdict(err error) string {
	if err != nil {
		return err.Error()
	}
	return ""
}

func run(req request) (response, error) {
	var stored []tlog.Hash
	reader := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			if x < 0 || x >= int64(len(stored)) {
				return nil, fmt.Errorf("no stored hash %d", x)
			}
			out[i] = stored[x]
		}
		return out, nil
	})
	for n, record := range req.Records {
		more, err := tlog.StoredHashes(int64(n), record, reader)
		if err != nil {
			return response{}, err
		}
		stored = append(stored, more...)
	}

	var resp response
	for _, t := range req.Trees {
		th, err := tlog.TreeHash(t.Size, reader)
		if err != nil {
			return response{}, err
		}
		result := treeResult{Size: t.Size, Hash: th[:], Inclusion: []string{}, Consistency: []string{}}
		for _, p := range t.Inclusion {
			proof, err := hashes(p.Proof)
			if err == nil {
				err = tlog.CheckRecord(proof, t.Size, th, p.Index, tlog.RecordHash(req.Records[p.Index]))
			}
			result.Inclusion = append(result.Inclusion, verdict(err))
		}
		for _, p := range t.Consistency {
			proof, err := hashes(p.Proof)
			if err == nil {
				var old tlog.Hash
				if old, err = tlog.TreeHash(p.Old, reader); err == nil {
					err = tlog.CheckTree(proof, t.Size, th, p.Old, old)
				}
			}
			result.Consistency = append(result.Consistency, verdict(err))
		}
		resp.Trees = append(resp.Trees, result)
	}
	for _, t := range req.Tiles {
		goTile := tlog.Tile{H: 8, L: t.Level, N: t.Index, W: t.Width}
		data, err := tlog.ReadTileData(goTile, reader)
		resp.Tiles = append(resp.Tiles, tileResult{Path: goTile.Path(), Data: data, Error: verdict(err)})
	}
	return resp, nil
}

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "bad request:", err)
		os.Exit(2)
	}
	resp, err := run(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(resp); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
