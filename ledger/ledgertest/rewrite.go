package ledgertest

import (
	"golang.org/x/mod/sumdb/tlog"
)

// StoredHashes returns every stored hash (in [tlog.StoredHashIndex]
// numbering) of a log holding entries: what an attacker who rewrote
// entries in a database writes over the hashes so the stored tree is again
// a valid one. Tests of fork detection use it.
func StoredHashes(entries [][]byte) ([]tlog.Hash, error) {
	var hashes []tlog.Hash
	read := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hashes[x]
		}
		return out, nil
	})
	for n, e := range entries {
		hs, err := tlog.StoredHashes(int64(n), e, read)
		if err != nil {
			return nil, err
		}
		hashes = append(hashes, hs...)
	}
	return hashes, nil
}
