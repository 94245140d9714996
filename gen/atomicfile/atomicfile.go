// Package atomicfile writes files so that readers see either the old content
// or the new, never a half-written file: data goes to a temporary file in the
// same directory, is synced, and is renamed over the target.
package atomicfile

import (
	"bytes"
	"os"
	"path/filepath"
)

// Write replaces path with data atomically, creating parent directories.
// An unchanged file is left alone (its modification time too), so build
// tools that watch timestamps do not rebuild for nothing.
func Write(path string, data []byte, perm os.FileMode) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(name)
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(name, path); err != nil {
		return err
	}
	ok = true
	return nil
}

// File is one output of a generator run.
type File struct {
	Path string
	Data []byte
}

// WriteAll writes every file atomically. All content must be produced before
// calling it, so a failing generator touches nothing.
func WriteAll(files []File) error {
	for _, f := range files {
		if err := Write(f.Path, f.Data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
