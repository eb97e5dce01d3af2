// Package results turns the exports of a data-retrieval (access or
// portability) request into the data subject's results bundle, and stores,
// serves and expires bundles.
//
// A bundle follows mParticle's "Access / Portability Response Format": a zip
// of JSON Lines files.
//
//   - profile.jsonl: the live profiles from dsrflow's profile store.
//   - <destination>-events-0001.jsonl, -0002, ...: the events of each
//     destination's export, at most MaxLinesPerFile lines per file.
//   - <destination>-people-0001.jsonl, ...: the destination's people
//     (profile) records, split the same way.
//   - empty.txt: a short sentence, present when no export holds any record
//     (profiles matched, but there is no data).
//
// Build streams every export entry by entry and line by line, so its memory
// use does not grow with the size of the exports. Store keeps bundles on disk
// under names derived from a hash of their download token, and holds the
// exports while a bundle is built in Spools, which its Wrap (the key ring's
// stream format, in dsrflow) encrypts on their way to disk: neither an
// export nor a bundle is ever on disk in clear. PurgeTemporary removes the
// spools and unfinished writes an interrupted build left behind.
package results
