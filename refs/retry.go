package refs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// MaxKeyLength is the longest Idempotency-Key, in characters (API.md).
const MaxKeyLength = 255

// maxRecordKey is the longest key the index stores (IdempotencyRecord.Key).
const maxRecordKey = 1024

// Request is what the retry rules of API.md need to know about a request
// that creates something, and how to answer it.
type Request[T any] struct {
	// Key is the client's Idempotency-Key; "" when it sent none.
	Key string
	// Method, Path and Query (in a canonical order) identify the request;
	// the key is scoped to Method and Path.
	Method, Path, Query string
	// Body is the hash of the request's body (a JSON request). A request
	// whose body is the content being stored leaves it nil: the hash of the
	// bytes stored is the hash of the body.
	Body *cas.Hash
	// Render turns the result of the write into the status and body the
	// client gets; a retry with the same key gets them again, byte for byte.
	// created is false when the write was identical to the latest version
	// and created nothing.
	Render func(v T, created bool) (status int, body []byte, err error)
}

// Answer is the response to a creating request.
type Answer struct {
	Status int
	Body   []byte
	// Replayed is true when the answer is the one stored for the
	// Idempotency-Key of an earlier request (nothing was written now).
	Replayed bool
}

// Fingerprint identifies a request by its method, path, query and the hash
// of its body.
func Fingerprint(method, path, query string, body cas.Hash) cas.Hash {
	h := cas.NewHasher()
	for _, s := range []string{method, path, query} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	h.Write(body[:])
	return h.Sum()
}

// CheckKey reports whether an Idempotency-Key is acceptable (ErrInvalid
// otherwise).
func CheckKey(key string) error {
	if utf8.RuneCountInString(key) > MaxKeyLength {
		return fmt.Errorf("%w: Idempotency-Key is longer than %d characters", ErrInvalid, MaxKeyLength)
	}
	return nil
}

// recordKey scopes key to the method and path of the request. A key too
// long for the index, or one that is not text every engine stores (invalid
// UTF-8, NUL), is replaced by its hash (the scope stays readable).
func recordKey(method, path, key string) string {
	k := method + " " + path + "\x00" + key
	if len(k) <= maxRecordKey && checkText("key", key) == nil {
		return k
	}
	return method + " " + path + "\x00#" + cas.Sum([]byte(key)).String()
}

// writeOp is one creating write: what it needs of the retry rules and of
// the blob protocol.
type writeOp[T any] struct {
	req Request[T]
	// body is the hash that stands for the request's body in its
	// fingerprint (Request.Body, else the hash of the bytes stored).
	body cas.Hash
	// restore stores the bytes again after the index said ErrBlobMissing (a
	// sweep took them); nil when the Service does not hold them.
	restore func(ctx context.Context) error
	// apply writes the change in tx.
	apply func(tx index.Tx) (v T, created bool, err error)
	// noTx: apply writes nothing to the index (its write happened before);
	// without a key to record, no transaction is needed.
	noTx bool
	// checked: the transaction does not look for the key's record, because
	// replayed looked just before and found none, or because the op leaves
	// it to PutIdempotency (unitOp). A record committed since by a
	// concurrent request with the key makes PutIdempotency (or the commit)
	// fail with ErrConflict, and that request's answer is replayed: the
	// look inside would only save the work of a transaction that will not
	// commit, in that rare race, at the cost of a round trip to PostgreSQL
	// in every other request.
	checked bool
}

func (op *writeOp[T]) fingerprint() cas.Hash {
	return Fingerprint(op.req.Method, op.req.Path, op.req.Query, op.body)
}

// replayed returns the answer stored for the request's key, if any: the
// same request gets it again; another one is ErrKeyReused.
func replayed[T any](ctx context.Context, r index.Reader, op *writeOp[T]) (Answer, bool, error) {
	if op.req.Key == "" {
		return Answer{}, false, nil
	}
	key := recordKey(op.req.Method, op.req.Path, op.req.Key)
	rec, err := r.Idempotency(ctx, key)
	switch {
	case errors.Is(err, index.ErrNotFound):
		op.checked = true
		return Answer{}, false, nil
	case err != nil:
		return Answer{}, false, fmt.Errorf("refs: read idempotency record: %w", err)
	}
	ans, err := replay(rec, op.fingerprint())
	return ans, true, err
}

func replay(rec index.IdempotencyRecord, fp cas.Hash) (Answer, error) {
	if rec.Fingerprint != fp {
		return Answer{}, fmt.Errorf("%w: the key was first used with a different request", ErrKeyReused)
	}
	return Answer{Status: rec.Status, Body: bytes.Clone(rec.Body), Replayed: true}, nil
}

// errReplay aborts a transaction that found the key's record: the answer
// is the stored one.
type errReplay struct{ rec index.IdempotencyRecord }

func (e *errReplay) Error() string { return "refs: idempotency record found" }

// errKeyTaken aborts a transaction whose PutIdempotency lost a race with a
// concurrent request under the same key.
type errKeyTaken struct{ err error }

func (e *errKeyTaken) Error() string { return "refs: idempotency key taken: " + e.err.Error() }
func (e *errKeyTaken) Unwrap() error { return e.err }

// commit runs op: the write and, when the request has a key, its record, in
// one index transaction. A request whose key has a record gets the stored
// answer (or ErrKeyReused). When the index says a blob is missing and op can
// store it again, it does so and retries, a bounded number of times.
func commit[T any](ctx context.Context, s *Service, op *writeOp[T]) (Answer, error) {
	var key string
	if op.req.Key != "" {
		if err := CheckKey(op.req.Key); err != nil {
			return Answer{}, err
		}
		key = recordKey(op.req.Method, op.req.Path, op.req.Key)
	}
	fp := op.fingerprint()
	if key == "" && op.noTx {
		v, created, err := op.apply(nil)
		if err != nil {
			return Answer{}, err
		}
		status, body, err := op.req.Render(v, created)
		if err != nil {
			return Answer{}, fmt.Errorf("refs: render answer: %w", err)
		}
		return Answer{Status: status, Body: body}, nil
	}
	for attempt := 1; ; attempt++ {
		var ans Answer
		err := s.update(ctx, func(tx index.Tx) error {
			if key != "" && !op.checked {
				rec, err := tx.Idempotency(ctx, key)
				switch {
				case err == nil:
					return &errReplay{rec}
				case !errors.Is(err, index.ErrNotFound):
					return fmt.Errorf("refs: read idempotency record: %w", err)
				}
			}
			v, created, err := op.apply(tx)
			if err != nil {
				return err
			}
			status, body, err := op.req.Render(v, created)
			if err != nil {
				return fmt.Errorf("refs: render answer: %w", err)
			}
			if key != "" {
				err := tx.PutIdempotency(index.IdempotencyRecord{
					Key:         key,
					Fingerprint: fp,
					Status:      status,
					Body:        body,
					ExpiresAt:   s.opt.Now().Add(s.opt.IdempotencyTTL),
				})
				if errors.Is(err, index.ErrConflict) {
					return &errKeyTaken{err}
				}
				if err != nil {
					return fmt.Errorf("refs: store idempotency record: %w", err)
				}
			}
			ans = Answer{Status: status, Body: body}
			return nil
		})
		var rp *errReplay
		var taken *errKeyTaken
		switch {
		case err == nil:
			return ans, nil
		case errors.As(err, &rp):
			return replay(rp.rec, fp)
		case errors.As(err, &taken):
			// A concurrent request with the same key committed first: its
			// answer is ours.
			rec, rerr := s.idx.Idempotency(ctx, key)
			if rerr != nil {
				return Answer{}, fmt.Errorf("refs: read idempotency record after a concurrent write: %w", rerr)
			}
			return replay(rec, fp)
		case errors.Is(err, index.ErrBlobMissing) && op.restore != nil && attempt < storeAttempts:
			s.log.Warn("a sweep took a blob under a commit; storing it again", "error", err.Error())
			if err := op.restore(ctx); err != nil {
				return Answer{}, err
			}
		default:
			if key != "" {
				// A concurrent request with the same key may have made this
				// one fail (it took the name first): it gets that answer.
				if rec, rerr := s.idx.Idempotency(ctx, key); rerr == nil {
					return replay(rec, fp)
				}
			}
			return Answer{}, err
		}
	}
}

// bodyHash is the hash that stands for a JSON request's body: b, or the
// hash of no bytes when the request had none.
func bodyHash(b *cas.Hash) cas.Hash {
	if b != nil {
		return *b
	}
	return cas.Sum(nil)
}
