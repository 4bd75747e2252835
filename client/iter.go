package client

import (
	"context"
	"fmt"
	"iter"

	"github.com/google/uuid"
)

// PageFunc fetches one page of a list.
type PageFunc[T any] func(ctx context.Context, opt ListOptions) (Page[T], error)

// All iterates over every item of a list, fetching page after page from
// opt (its Cursor, Limit and Name filter). On an error it yields the zero T
// with the error and stops. Breaking out of the loop fetches nothing more.
//
//	for u, err := range client.All(ctx, client.ListOptions{Limit: 1000}, c.Collections) { … }
func All[T any](ctx context.Context, opt ListOptions, fetch PageFunc[T]) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for {
			p, err := fetch(ctx, opt)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, it := range p.Items {
				if !yield(it, nil) {
					return
				}
			}
			if p.NextCursor == "" {
				return
			}
			if p.NextCursor == opt.Cursor {
				var zero T
				yield(zero, fmt.Errorf("client: list: the server returned the same cursor again"))
				return
			}
			opt.Cursor = p.NextCursor
		}
	}
}

// AllCollections iterates over every collection.
func (c *Client) AllCollections(ctx context.Context, opt ListOptions) iter.Seq2[Collection, error] {
	return All(ctx, opt, c.Collections)
}

// AllUnits iterates over every unit of a collection (latest versions).
func (c *Client) AllUnits(ctx context.Context, collection uuid.UUID, opt ListOptions) iter.Seq2[Unit, error] {
	return All(ctx, opt, func(ctx context.Context, o ListOptions) (Page[Unit], error) {
		return c.CollectionUnits(ctx, collection, o)
	})
}

// AllAssets iterates over every asset of a collection (latest versions).
func (c *Client) AllAssets(ctx context.Context, collection uuid.UUID, opt ListOptions) iter.Seq2[Asset, error] {
	return All(ctx, opt, func(ctx context.Context, o ListOptions) (Page[Asset], error) {
		return c.CollectionAssets(ctx, collection, o)
	})
}
