// tlogcheck - an auditor's check of a `keyroom audit export` directory with
// the Go module's own transparency-log code, golang.org/x/mod/sumdb/note and
// golang.org/x/mod/sumdb/tlog (the reference implementations DESIGN.md 5.4
// names), not keyroom's C:
//
//   - the export's checkpoint and every checkpoint in checkpoints/ open as
//     signed notes under the verifier key (note.Open);
//   - the hash tiles authenticate against the latest checkpoint's root
//     (tlog.TileHashReader) and rebuild it (tlog.TreeHash);
//   - every entry of the entry bundles hashes (tlog.RecordHash) to its
//     leaf in the authenticated level-0 tiles;
//   - every earlier checkpoint is consistent with the latest one
//     (tlog.ProveTree + tlog.CheckTree): no fork, no rewritten history;
//   - every proofs/*.tlog-proof proves its entry into its own checkpoint
//     (tlog.CheckRecord), that checkpoint is consistent with the latest,
//     and the entry is a cert-issued entry whose certificate's SHA-256 is
//     the file's name and the entry's cert-sha256; every cert-issued entry
//     of the log has such a proof.
//
// The export keeps the C2SP tlog-tiles layout: the Go module's tile paths
// without the height, and tile/entries/ for its tile/H/data/.
//
// usage: tlogcheck EXPORT_DIR VKEY_FILE
// Prints what it checked; exit 0 all good, 1 a check failed, 2 usage.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const height = 8 // C2SP tlog-tiles: 256 hashes a tile

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "tlogcheck: FAIL: "+format+"\n", a...)
	os.Exit(1)
}

// tiles reads hash tiles from a C2SP tlog-tiles directory.
type tiles struct{ dir string }

func (t tiles) Height() int { return height }

// c2spPath: the Go path "tile/8/L/N[.p/W]" without the height.
func c2spPath(t tlog.Tile) string {
	p := strings.TrimPrefix(t.Path(), fmt.Sprintf("tile/%d/", t.H))
	if t.L == -1 {
		p = "entries" + strings.TrimPrefix(p, "data")
	}
	return filepath.Join("tile", p)
}

func (t tiles) ReadTiles(ts []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(ts))
	for i, x := range ts {
		b, err := os.ReadFile(filepath.Join(t.dir, c2spPath(x)))
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

func (t tiles) SaveTiles([]tlog.Tile, [][]byte) {}

// checkpoint opens a C2SP signed checkpoint: origin, size, root hash.
func checkpoint(text []byte, v note.Verifiers, origin string) tlog.Tree {
	n, err := note.Open(text, v)
	if err != nil {
		fail("checkpoint does not verify: %v", err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 || lines[len(lines)-1] != "" {
		fail("checkpoint body: want origin, size, root hash")
	}
	if origin != "" && lines[0] != origin {
		fail("checkpoint origin %q, want %q", lines[0], origin)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || lines[1] != strconv.FormatInt(size, 10) {
		fail("checkpoint size %q", lines[1])
	}
	h, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(h) != tlog.HashSize {
		fail("checkpoint root hash %q", lines[2])
	}
	var root tlog.Hash
	copy(root[:], h)
	return tlog.Tree{N: size, Hash: root}
}

// consistent: tree old is a prefix of tree cur (r reads cur's hashes).
func consistent(old, cur tlog.Tree, r tlog.HashReader, what string) {
	if old.N > cur.N {
		fail("%s: size %d is beyond the latest checkpoint (%d)", what,
			old.N, cur.N)
	}
	if old.N == 0 {
		return
	}
	p, err := tlog.ProveTree(cur.N, old.N, r)
	if err != nil {
		fail("%s: consistency proof: %v", what, err)
	}
	if err := tlog.CheckTree(p, cur.N, cur.Hash, old.N, old.Hash); err != nil {
		fail("%s: not consistent with the latest checkpoint: %v", what, err)
	}
}

// fields: an entry's "key value" lines after its "ORIGIN entry/v1" line.
func fields(entry []byte, origin string) (map[string]string, bool) {
	el := strings.Split(string(entry), "\n")
	if len(el) < 2 || el[0] != origin+" entry/v1" {
		return nil, false
	}
	f := map[string]string{}
	for _, l := range el[1:] {
		if k, val, ok := strings.Cut(l, " "); ok {
			f[k] = val
		}
	}
	return f, true
}

// entries checks every entry bundle against the authenticated leaves and
// returns the cert-sha256 of every cert-issued entry.
func entries(dir, origin string, tree tlog.Tree,
	r tlog.HashReader) map[string]bool {
	issued := map[string]bool{}
	for start := int64(0); start < tree.N; start += 1 << height {
		w := tree.N - start
		if w > 1<<height {
			w = 1 << height
		}
		t := tlog.Tile{H: height, L: -1, N: start >> height, W: int(w)}
		b, err := os.ReadFile(filepath.Join(dir, c2spPath(t)))
		if err != nil {
			fail("entry bundle: %v", err)
		}
		idx := make([]int64, w)
		for i := range idx {
			idx[i] = tlog.StoredHashIndex(0, start+int64(i))
		}
		leaves, err := r.ReadHashes(idx)
		if err != nil {
			fail("level-0 tile %s: %v", c2spPath(t), err)
		}
		for i := int64(0); i < w; i++ {
			if len(b) < 2 {
				fail("%s: truncated at entry %d", c2spPath(t), start+i)
			}
			l := int(binary.BigEndian.Uint16(b))
			if len(b) < 2+l {
				fail("%s: truncated at entry %d", c2spPath(t), start+i)
			}
			if tlog.RecordHash(b[2:2+l]) != leaves[i] {
				fail("entry %d does not hash to its leaf", start+i)
			}
			f, ok := fields(b[2:2+l], origin)
			if !ok {
				fail("entry %d does not start with %q", start+i,
					origin+" entry/v1")
			}
			if f["type"] == "cert-issued" {
				issued[f["cert-sha256"]] = true
			}
			b = b[2+l:]
		}
		if len(b) != 0 {
			fail("%s: %d bytes after its %d entries", c2spPath(t), len(b), w)
		}
	}
	return issued
}

// proof checks one c2sp.org/tlog-proof@v1 file for certificate hex.
func proof(path, hexName string, v note.Verifiers, origin string,
	latest tlog.Tree, r tlog.HashReader) {
	b, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	head, cp, ok := bytes.Cut(b, []byte("\n\n"))
	if !ok {
		fail("%s: no checkpoint after the proof", path)
	}
	lines := strings.Split(string(head), "\n")
	if len(lines) < 3 || lines[0] != "c2sp.org/tlog-proof@v1" ||
		!strings.HasPrefix(lines[1], "extra ") ||
		!strings.HasPrefix(lines[2], "index ") {
		fail("%s: not a c2sp.org/tlog-proof@v1", path)
	}
	entry, err := base64.StdEncoding.DecodeString(lines[1][6:])
	if err != nil {
		fail("%s: extra: %v", path, err)
	}
	index, err := strconv.ParseInt(lines[2][6:], 10, 64)
	if err != nil || index < 0 {
		fail("%s: index %q", path, lines[2][6:])
	}
	var rp tlog.RecordProof
	for _, l := range lines[3:] {
		h, err := base64.StdEncoding.DecodeString(l)
		if err != nil || len(h) != tlog.HashSize {
			fail("%s: proof hash %q", path, l)
		}
		var x tlog.Hash
		copy(x[:], h)
		rp = append(rp, x)
	}
	t := checkpoint(cp, v, origin)
	if index >= t.N {
		fail("%s: index %d beyond its checkpoint (%d)", path, index, t.N)
	}
	if err := tlog.CheckRecord(rp, t.N, t.Hash, index,
		tlog.RecordHash(entry)); err != nil {
		fail("%s: inclusion: %v", path, err)
	}
	consistent(t, latest, r, path)
	f, ok := fields(entry, origin)
	if !ok {
		fail("%s: entry does not start with %q", path, origin+" entry/v1")
	}
	if f["type"] != "cert-issued" {
		fail("%s: entry type %q, want cert-issued", path, f["type"])
	}
	der, err := base64.StdEncoding.DecodeString(f["cert"])
	if err != nil || len(der) == 0 {
		fail("%s: entry has no certificate", path)
	}
	sum := sha256.Sum256(der)
	if got := hex.EncodeToString(sum[:]); got != f["cert-sha256"] ||
		got != hexName {
		fail("%s: certificate SHA-256 %s, entry says %s", path, got,
			f["cert-sha256"])
	}
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: tlogcheck EXPORT_DIR VKEY_FILE")
		os.Exit(2)
	}
	dir := os.Args[1]
	vk, err := os.ReadFile(os.Args[2])
	if err != nil {
		fail("%v", err)
	}
	ver, err := note.NewVerifier(strings.TrimSpace(string(vk)))
	if err != nil {
		fail("verifier key: %v", err)
	}
	v := note.VerifierList(ver)
	origin := ver.Name()

	cp, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
	if err != nil {
		fail("%v", err)
	}
	latest := checkpoint(cp, v, origin)
	r := tlog.TileHashReader(latest, tiles{dir})
	root, err := tlog.TreeHash(latest.N, r)
	if err != nil {
		fail("tiles: %v", err)
	}
	if root != latest.Hash {
		fail("tiles rebuild root %v, checkpoint says %v", root, latest.Hash)
	}
	fmt.Printf("checkpoint: %s, %d entries, signature and tiles verify\n",
		origin, latest.N)

	issued := entries(dir, origin, latest, r)
	fmt.Printf("entries: all %d hash to their authenticated leaves\n",
		latest.N)

	cps, _ := filepath.Glob(filepath.Join(dir, "checkpoints", "*"))
	sort.Strings(cps)
	for _, p := range cps {
		b, err := os.ReadFile(p)
		if err != nil {
			fail("%v", err)
		}
		consistent(checkpoint(b, v, origin), latest, r, p)
	}
	fmt.Printf("checkpoints: %d, each signed and consistent with the latest\n",
		len(cps))

	ps, _ := filepath.Glob(filepath.Join(dir, "proofs", "*.tlog-proof"))
	for _, p := range ps {
		h := strings.TrimSuffix(filepath.Base(p), ".tlog-proof")
		proof(p, h, v, origin, latest, r)
		delete(issued, h)
	}
	// every certificate the log issued has its proof in the export
	for h := range issued {
		fail("certificate %s is logged as issued but has no proof", h)
	}
	fmt.Printf("proofs: %d certificates proven into signed, consistent checkpoints\n",
		len(ps))
}
