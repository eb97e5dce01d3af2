package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/dsrflow/dsrflow/internal/keyring"
	"github.com/dsrflow/dsrflow/internal/sqldb"
)

// PurposeProfile is the purpose of the keyed hash that stands for an erased
// subject's profile id in the ledger's reasons.
const PurposeProfile = "ledger/profile-id"

// erasedPrefix opens the mention that replaces a forgotten profile id:
// "[erased hmac:<key id>:<hex>]".
const erasedPrefix = "[erased "

// ForgetProfiles replaces every mention of the given profile ids in the
// reasons the ledger keeps for controller's requests (status reasons,
// transition reasons, forwarding messages; e.g. "ambiguous identity: 2
// profiles match (p1, p2)" or "identity settled by ...: profile p1") by
// "[erased <keyed hash>]", the id's keyed hash for PurposeProfile. An
// erasure's completion calls it, so that the ledger keeps no profile id of
// the erased subject in clear, while an auditor holding the key can still
// tell which profile a record named. A mention is the id not directly
// preceded or followed by a letter, digit, '-' or '_' (so p1 is not
// mistaken for p10). It returns the number of rows changed; calling it again
// changes nothing. On SQLite it runs with secure_delete on, so the old text
// is overwritten in the database file, and then checkpoints and truncates
// the write-ahead log.
func (s *Store) ForgetProfiles(ctx context.Context, keys *keyring.Ring, controller string, profileIDs []string) (changed int, err error) {
	defer wrap(&err, "forget %d profile ids of controller %s", len(profileIDs), controller)
	if keys == nil {
		return 0, fmt.Errorf("no key ring")
	}
	var ids []string
	for _, id := range profileIDs {
		if strings.TrimSpace(id) != "" {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return 0, nil
	}
	// Find the rows that mention an id first, outside any transaction (on
	// SQLite a write transaction would hold the write lock for the scan);
	// then rewrite just those, reading each again under the lock.
	type hit struct {
		column forgetColumn
		key    string
	}
	var hits []hit
	seen := map[hit]bool{}
	for _, id := range ids {
		pattern := "%" + likeEscaper.Replace(id) + "%"
		for _, c := range forgetColumns {
			keysFound, err := s.mentioning(ctx, c, controller, pattern)
			if err != nil {
				return 0, err
			}
			for _, k := range keysFound {
				if h := (hit{c, k}); !seen[h] {
					seen[h] = true
					hits = append(hits, h)
				}
			}
		}
	}
	if len(hits) == 0 {
		return 0, nil
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if s.db.Dialect == sqldb.SQLite {
		if _, err := conn.ExecContext(ctx, `PRAGMA secure_delete = ON`); err != nil {
			return 0, fmt.Errorf("secure_delete: %w", err)
		}
		defer func() { _, _ = conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA secure_delete = OFF`) }()
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }()
	for _, h := range hits {
		c := h.column
		var text string
		err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT `+c.text+` FROM `+c.table+`
			WHERE controller_id = ? AND `+c.rowKey+` = ?`), controller, h.key).Scan(&text)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", c.table, err)
		}
		forgotten := ForgetMentions(keys, text, ids, false)
		if forgotten == text {
			continue
		}
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE `+c.table+` SET `+c.text+` = ?
			WHERE controller_id = ? AND `+c.rowKey+` = ?`), forgotten, controller, h.key); err != nil {
			return 0, fmt.Errorf("rewrite %s: %w", c.table, err)
		}
		changed++
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	if s.db.Dialect == sqldb.SQLite && changed > 0 {
		// The old pages also sit in the write-ahead log and, until it is
		// checkpointed, in the database file (best effort: a reader at this
		// moment keeps them until the next checkpoint).
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA wal_checkpoint(TRUNCATE)`)
	}
	return changed, nil
}

// forgetColumn is a column holding free text about a request, with the
// expression that identifies its row among the controller's.
type forgetColumn struct{ table, text, rowKey string }

var forgetColumns = []forgetColumn{
	{"requests", "status_reason", "request_id"},
	{"transitions", "reason", "id"},
	{"forwarding", "status_message", "request_id || '/' || destination"},
}

// mentioning returns the keys of controller's rows whose column c matches
// the LIKE pattern.
func (s *Store) mentioning(ctx context.Context, c forgetColumn, controller, pattern string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT `+c.rowKey+` FROM `+c.table+`
		WHERE controller_id = ? AND `+c.text+` LIKE ? ESCAPE '\'`), controller, pattern)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", c.table, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("read %s: %w", c.table, err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", c.table, err)
	}
	return out, nil
}

// ForgetMentions returns text with every mention of profileIDs replaced as
// ForgetProfiles does in the ledger's own columns; also for texts the ledger
// keeps sealed (a resolution trace), which the caller opens and seals
// again. With inJSON, text is JSON and the ids are looked for as JSON
// strings spell them.
func ForgetMentions(keys *keyring.Ring, text string, profileIDs []string, inJSON bool) string {
	for _, id := range profileIDs {
		if strings.TrimSpace(id) == "" {
			continue
		}
		spelled := id
		if inJSON {
			b, _ := json.Marshal(id)
			spelled = string(b[1 : len(b)-1])
		}
		text = replaceMentions(text, spelled, erasedPrefix+keys.Hash(PurposeProfile, id)+"]")
	}
	return text
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// replaceMentions replaces each mention of id in text by repl: an
// occurrence not directly preceded or followed by a letter, digit, '-' or
// '_', and not inside an earlier "[erased ...]" replacement.
func replaceMentions(text, id, repl string) string {
	var b strings.Builder
	i := 0
	for i < len(text) {
		if strings.HasPrefix(text[i:], erasedPrefix) {
			end := strings.IndexByte(text[i:], ']')
			if end < 0 {
				end = len(text) - i - 1
			}
			b.WriteString(text[i : i+end+1])
			i += end + 1
			continue
		}
		if strings.HasPrefix(text[i:], id) && !idRuneBefore(text[:i]) && !idRuneAfter(text[i+len(id):]) {
			b.WriteString(repl)
			i += len(id)
			continue
		}
		_, size := utf8.DecodeRuneInString(text[i:])
		b.WriteString(text[i : i+size])
		i += size
	}
	return b.String()
}

func idRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_'
}

func idRuneBefore(s string) bool {
	r, size := utf8.DecodeLastRuneInString(s)
	return size > 0 && idRune(r)
}

func idRuneAfter(s string) bool {
	r, size := utf8.DecodeRuneInString(s)
	return size > 0 && idRune(r)
}
