// Package console is the operators' web console, served at /ui/ (and /)
// from files built into the binary: plain HTML, CSS and a small script, no
// build step, nothing loaded from another host.
//
// The console is a client of the public API only: the page holds no data,
// and every figure it shows comes from a fetch to /api/v1/… with the
// operator's token (kept in sessionStorage for the tab's life). Deployment,
// readiness, totals and the last sweep come from GET /api/v1/stats; a
// collection's counts and bytes from GET /api/v1/collections/{uuid}/stats.
// The Changes view reads GET /api/v1/changes: the feed is oldest first from
// a cursor, so the view reads the kept history once (bounded) to show the
// latest changes, then follows with long-polls that end when the operator
// leaves the view.
//
// # Invariants
//
//   - The files are served without a token (IsStatic): they hold no data.
//   - Every response carries a Content-Security-Policy that allows only
//     this origin, so the page can reach no other host.
//   - Text from the API is inserted as text (textContent), never as markup.
package console
