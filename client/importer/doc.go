// Package importer imports a directory tree into a Blockstore collection and
// exports a collection back to a tree: the logic behind `blockstore import`
// and `blockstore export`, over the HTTP API through package client.
//
// An import walks the tree, hashes the files in parallel (each file on one
// worker, streaming, with a fixed buffer per worker), asks the server which
// hashes it lacks (POST /blobs/missing, batched), uploads only those
// (PUT /blobs/{hash}, in parallel, streaming), and creates or versions each
// entity as soon as its bytes are stored and the entities it links to
// exist. A rerun of an interrupted import finds what is stored and what is
// committed, and finishes the job without sending it again.
//
// # Glossary
//
//   - Name: a file's slash-separated path relative to the imported
//     directory. An entity is known within its collection by its name
//     (API.md: names are unique among a collection's units and assets), so
//     an unchanged file creates nothing and a changed one becomes the next
//     version of the same entity.
//   - Layout: LayoutOLX for an Open edX OLX export (course.xml or
//     library.xml at the root), LayoutPlain for any other tree (every file
//     an asset).
//   - Block folder: in an OLX export, a top-level folder (static/ aside)
//     that holds .xml files directly: chapter/, sequential/, vertical/,
//     html/, problem/, video/…
//   - Unit: in an OLX export, course.xml or library.xml and each .xml file
//     directly in a block folder (its bytes are the unit's OLX; OLX that is
//     not UTF-8, or larger than 4 MiB, is imported as an asset instead).
//     Every other file is an asset, with a media type from its extension.
//   - Reference (ExtractRefs): an element with url_name whose tag is a block
//     folder with <tag>/<url_name>.xml in the tree (a unit-to-unit link); an
//     element with filename (<html filename="x"/> → html/x.html, an asset
//     link); a "/static/…" path in an attribute or text of the OLX or of the
//     HTML file it names, or <transcript src="…">, naming a file under
//     static/ (an asset link). References to files not in the tree are not
//     links. Links are unpinned: they follow their target's latest version.
//   - Summary: what a run did (files, bytes, bytes uploaded and
//     deduplicated, entities created, versions added, time, throughput).
//
// # Invariants
//
//   - Memory is bounded by the number of files (a few hundred bytes each),
//     not by their size: bytes stream from disk to the hasher and to the
//     server; only OLX and HTML files (at most 4 and 16 MiB) are read whole.
//   - A blob is uploaded at most once per run however many files hold it,
//     and never when the server has it.
//   - An entity is committed only after its bytes are stored and after
//     every entity it links to is committed; a unit whose target failed
//     is not imported. The server commits each entity atomically, so an
//     interrupted run leaves only complete entities.
//   - Symbolic links to directories are not followed (so links cannot loop);
//     a symbolic link to a file is imported under the link's name.
//   - An export writes only inside its directory (os.Root), each file
//     through a temporary file renamed into place after its hash is checked.
//
// # Calling it
//
//	c, err := client.New(serverURL, client.Options{Token: token})
//	sum, err := importer.Import(ctx, c, dir, importer.ImportOptions{
//		NewCollection: &client.NewCollection{Name: name}, // or Collection: id
//		Jobs:          jobs,
//		Progress:      os.Stderr,
//		IsTerminal:    term.IsTerminal(int(os.Stderr.Fd())),
//	})
//	sum.WriteText(os.Stdout) // or json.NewEncoder(os.Stdout).Encode(sum)
//
// Both Import and Export return their summary with the error: the error
// wraps ErrIncomplete when some files failed (the summary lists them), and
// is the cause when the run stopped (server down, ctx cancelled).
package importer
