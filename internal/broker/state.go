package broker

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/dcc-farm/dcc/pkg/fairshare"
)

// store keeps the broker's durable state: fair-share usage in bbolt, and
// the ed25519 key that signs lease tokens in a file beside it, so tokens
// issued before a restart still verify after it.
type store struct {
	db *bolt.DB
}

var bucketUsage = []byte("usage")

func openStore(dir string) (*store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	db, err := bolt.Open(filepath.Join(dir, "broker.db"), 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open state: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketUsage)
		return err
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &store{db: db}, nil
}

func (s *store) close() error { return s.db.Close() }

// saveUsage writes the accounts in snap and deletes those in gone.
func (s *store) saveUsage(snap map[string]fairshare.Account, gone []string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsage)
		for _, u := range gone {
			if err := b.Delete([]byte(u)); err != nil {
				return err
			}
		}
		for u, a := range snap {
			v, err := json.Marshal(a)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(u), v); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *store) loadUsage() (map[string]fairshare.Account, error) {
	out := make(map[string]fairshare.Account)
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUsage).ForEach(func(k, v []byte) error {
			var a fairshare.Account
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("usage of %q: %w", k, err)
			}
			out[string(k)] = a
			return nil
		})
	})
	return out, err
}

// loadSigningKey reads the broker's token key from dir, creating it on first start.
func loadSigningKey(dir string) (ed25519.PrivateKey, error) {
	p := filepath.Join(dir, "broker.key")
	b, err := os.ReadFile(p)
	if err == nil {
		if len(b) != ed25519.SeedSize {
			return nil, fmt.Errorf("%s: not an ed25519 seed", p)
		}
		return ed25519.NewKeyFromSeed(b), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, seed, 0o600); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, p); err != nil {
		return nil, err
	}
	return ed25519.NewKeyFromSeed(seed), nil
}
