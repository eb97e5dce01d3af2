package identity

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dsrflow/dsrflow/internal/config"
	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/opendsr"
)

// Policy says what Resolve does when several profiles match.
type Policy string

// The policies.
const (
	// PolicyHold forwards nothing and waits for an operator to choose (the
	// default: never guess silently).
	PolicyHold Policy = "hold"
	// PolicyAll forwards every matching profile.
	PolicyAll Policy = "all"
)

// Rule names the rule a Resolution applied.
type Rule string

// The rules of Resolve.
const (
	// RuleSingleProfile: the identities resolve to one profile, whose
	// identities enrich the request.
	RuleSingleProfile Rule = "single_profile"
	// RuleOperatorChoice: several profiles match and an operator chose one.
	RuleOperatorChoice Rule = "operator_choice"
	// RuleAllProfiles: several profiles match and policy all forwards each.
	RuleAllProfiles Rule = "all_profiles"
	// RuleAmbiguousHold: several profiles match (or an operator's choice is
	// not one of them) and nothing is forwarded until an operator chooses.
	RuleAmbiguousHold Rule = "ambiguous_hold"
	// RuleNoMatch: no profile matches; the request's own raw identities are
	// forwarded where a destination takes their type.
	RuleNoMatch Rule = "no_match"
	// RuleDeviceOnlyProtected: the request carries no login id and every
	// profile it matches carries one, so none is used; otherwise as no_match.
	RuleDeviceOnlyProtected Rule = "device_only_protected"
	// RuleInvalidRequest: the request breaks ValidateIdentities; nothing is
	// forwarded (the API refuses such requests, so this is a safety net).
	RuleInvalidRequest Rule = "invalid_request"
)

// Input is everything Resolve decides from.
type Input struct {
	// Identities are the request's identities, in order.
	Identities []Query `json:"identities"`
	// Matches is what a Finder returned for Identities.
	Matches []Match `json:"matches"`
	// LoginTypes are the identity types that are login ids;
	// DefaultLoginTypes when empty.
	LoginTypes []string `json:"login_types,omitempty"`
	// Destinations get one Plan each.
	Destinations []config.Destination `json:"destinations"`
	// Policy applies when several profiles match; PolicyHold when empty.
	Policy Policy `json:"policy,omitempty"`
	// ChosenProfile is the profile an operator settled an ambiguity with
	// (dsr resolve ID --profile P). It must be one of the candidates.
	ChosenProfile string `json:"chosen_profile,omitempty"`
}

// InputMatch traces one identity of the request: its type and format (never
// its value) and the profiles it matched.
type InputMatch struct {
	// Index is the identity's position in the request.
	Index  int    `json:"index"`
	Type   string `json:"type"`
	Format string `json:"format"`
	// Profiles are the ids of the profiles it matched and that were used as
	// candidates, sorted.
	Profiles []string `json:"profiles,omitempty"`
	// Protected are the profiles it matched but that carry a login id while
	// the request carries none: left out (device-only protection), sorted.
	Protected []string `json:"protected,omitempty"`
}

// Resolution is the outcome of Resolve and the trace of how it was reached.
// Apart from Plans[].DistinctIDs it holds no identity value (see Redacted).
type Resolution struct {
	// Rule is the rule that applied.
	Rule Rule `json:"rule"`
	// Reason explains the outcome in a sentence.
	Reason string `json:"reason"`
	// Matched traces each identity of the request.
	Matched []InputMatch `json:"matched"`
	// Profiles are the ids of the profiles resolved to, sorted.
	Profiles []string `json:"profiles,omitempty"`
	// Candidates are the profiles an operator chooses from (RuleAmbiguousHold),
	// sorted.
	Candidates []string `json:"candidates,omitempty"`
	// Hold is true when nothing may be forwarded until an operator chooses a
	// profile; Plans is then empty.
	Hold bool `json:"hold,omitempty"`
	// Plans has one entry per destination, in the order given.
	Plans []dsr.Plan `json:"plans,omitempty"`
}

// Redacted returns r without the distinct_ids, fit for the ledger and logs.
func (r Resolution) Redacted() Resolution {
	r.Matched = slices.Clone(r.Matched)
	plans := make([]dsr.Plan, len(r.Plans))
	for i, p := range r.Plans {
		p.DistinctIDs = nil
		plans[i] = p
	}
	if r.Plans != nil {
		r.Plans = plans
	}
	return r
}

// ErrDuplicateIdentityType is ValidateIdentities' error; its message is
// mParticle's.
var ErrDuplicateIdentityType = errors.New(opendsr.DuplicateIdentityTypeMessage)

// ValidateIdentities enforces one identity per identity type in a request,
// mParticle's rule when forwarding is on: a request naming two customer ids
// could name two people. It returns ErrDuplicateIdentityType, whose message
// is exactly "Only one identity of each identity type is allowed per request".
func ValidateIdentities(ids []Query) error {
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if seen[id.Type] {
			return ErrDuplicateIdentityType
		}
		seen[id.Type] = true
	}
	return nil
}

// Resolve applies the identity rules to a request and what its identities
// matched, and decides what each destination receives:
//
//  1. A request has one identity per type (ValidateIdentities); otherwise
//     nothing is forwarded (RuleInvalidRequest, Hold).
//  2. A request without a login id (only device or advertising ids) does
//     not reach profiles that carry one: they are left out, and when that
//     leaves none, the rule is RuleDeviceOnlyProtected.
//  3. One profile: it is resolved to (RuleSingleProfile). Several: an
//     operator's ChosenProfile among them is resolved to (RuleOperatorChoice);
//     else policy all resolves to every one (RuleAllProfiles); else nothing
//     is forwarded until an operator chooses (RuleAmbiguousHold, Hold, with
//     the Candidates). A ChosenProfile that is not a candidate is never
//     accepted: Hold, with the candidates there are.
//  4. Each destination receives the values of its IdentityType on the
//     resolved profiles, plus the request's own raw identity of that type
//     when it differs (the request is a source of truth too). When a profile
//     has no identity of that type and no login id, and the destination has
//     a DeviceIDPrefix, its device ids (DeviceTypes) are sent as
//     DeviceIDPrefix+id (Simplified ID Merge's device-only users).
//  5. No profile: the request's raw identity of the destination's type is
//     forwarded (RuleNoMatch); without one the destination is skipped.
//     Hashed identities are never forwarded.
//
// DistinctIDs are deduplicated and sorted. Resolve is pure and deterministic.
func Resolve(in Input) Resolution {
	res := Resolution{Matched: make([]InputMatch, len(in.Identities))}
	for i, q := range in.Identities {
		res.Matched[i] = InputMatch{Index: i, Type: q.Type, Format: q.EffectiveFormat()}
	}
	if err := ValidateIdentities(in.Identities); err != nil {
		res.Rule, res.Hold, res.Reason = RuleInvalidRequest, true, err.Error()
		return res
	}

	login := in.LoginTypes
	if len(login) == 0 {
		login = DefaultLoginTypes()
	}
	requestHasLogin := slices.ContainsFunc(in.Identities, func(q Query) bool { return slices.Contains(login, q.Type) })

	// Gather the matched profiles, dropping the login-protected ones when
	// the request carries no login id.
	profiles := map[string]Profile{}
	var protected []string
	for _, m := range in.Matches {
		valid := slices.DeleteFunc(slices.Clone(m.Inputs), func(i int) bool { return i < 0 || i >= len(in.Identities) })
		if len(valid) == 0 || m.Profile.ID == "" {
			continue // untraceable: no identity of the request matched it
		}
		id := m.Profile.ID
		isProtected := !requestHasLogin && hasType(m.Profile, login)
		for _, i := range valid {
			if isProtected {
				res.Matched[i].Protected = appendUnique(res.Matched[i].Protected, id)
			} else {
				res.Matched[i].Profiles = appendUnique(res.Matched[i].Profiles, id)
			}
		}
		if isProtected {
			protected = appendUnique(protected, id)
			continue
		}
		if prev, ok := profiles[id]; ok {
			m.Profile.Identities = append(slices.Clone(prev.Identities), m.Profile.Identities...)
		}
		profiles[id] = m.Profile
	}
	for i := range res.Matched {
		slices.Sort(res.Matched[i].Profiles)
		slices.Sort(res.Matched[i].Protected)
	}
	candidates := make([]string, 0, len(profiles))
	for id := range profiles {
		candidates = append(candidates, id)
	}
	slices.Sort(candidates)
	slices.Sort(protected)
	var note string
	if len(protected) > 0 && len(candidates) > 0 {
		note = fmt.Sprintf(" (%s left out: protected by a login id the request does not carry)", countProfiles(protected))
	}

	switch {
	case in.ChosenProfile != "" && slices.Contains(candidates, in.ChosenProfile):
		res.Rule, res.Profiles = RuleOperatorChoice, []string{in.ChosenProfile}
		res.Reason = fmt.Sprintf("an operator chose profile %s among %s", in.ChosenProfile, listIDs(candidates)) + note
	case in.ChosenProfile != "":
		res.Rule, res.Hold, res.Candidates = RuleAmbiguousHold, true, candidates
		res.Reason = fmt.Sprintf("the chosen profile %s is not accepted: it is not among the candidates (%s); waiting for an operator",
			in.ChosenProfile, orNone(candidates))
		return res
	case len(candidates) == 1:
		res.Rule, res.Profiles = RuleSingleProfile, candidates
		res.Reason = "the identities resolve to one profile, " + candidates[0] + note
	case len(candidates) > 1 && in.Policy == PolicyAll:
		res.Rule, res.Profiles = RuleAllProfiles, candidates
		res.Reason = fmt.Sprintf("%d profiles match (%s); policy all: each is forwarded", len(candidates), listIDs(candidates)) + note
	case len(candidates) > 1:
		res.Rule, res.Hold, res.Candidates = RuleAmbiguousHold, true, candidates
		res.Reason = fmt.Sprintf("%d profiles match (%s); policy hold: nothing is forwarded until an operator chooses one (dsr resolve --profile)",
			len(candidates), listIDs(candidates)) + note
		return res
	case len(protected) > 0:
		res.Rule = RuleDeviceOnlyProtected
		res.Reason = fmt.Sprintf("the request carries no login id and every profile it matches (%s) carries one: none is used",
			countProfiles(protected))
	default:
		res.Rule = RuleNoMatch
		res.Reason = "no profile matches the request's identities"
	}

	resolved := make([]Profile, len(res.Profiles))
	for i, id := range res.Profiles {
		resolved[i] = profiles[id]
	}
	res.Plans = make([]dsr.Plan, len(in.Destinations))
	for i, d := range in.Destinations {
		res.Plans[i] = plan(d, in.Identities, resolved, login, res.Rule)
	}
	return res
}

// plan decides what destination d receives from the resolved profiles and
// the request's identities.
func plan(d config.Destination, request []Query, resolved []Profile, login []string, rule Rule) dsr.Plan {
	p := dsr.Plan{Destination: d.Name}
	if d.IdentityType == "" {
		p.Skipped, p.Reason = true, "the destination has no identity type configured"
		return p
	}
	ids := map[string]bool{}
	known := map[string]bool{} // normalised values of d.IdentityType on the profiles
	var ofType, asDevice []string
	for _, prof := range resolved {
		has := false
		for _, id := range prof.Identities {
			if id.Type == d.IdentityType {
				has = true
				ids[strings.TrimSpace(id.Value)] = true
				known[normalize(id.Type, id.Value)] = true
			}
		}
		if has {
			ofType = append(ofType, prof.ID)
			continue
		}
		if d.DeviceIDPrefix == "" || hasType(prof, login) {
			continue
		}
		mapped := false
		for _, id := range prof.Identities {
			if deviceTypes[id.Type] {
				ids[d.DeviceIDPrefix+strings.TrimSpace(id.Value)] = true
				mapped = true
			}
		}
		if mapped {
			asDevice = append(asDevice, prof.ID)
		}
	}
	fromRequest, hashed := false, ""
	for _, q := range request {
		if q.Type != d.IdentityType {
			continue
		}
		if q.EffectiveFormat() != opendsr.IdentityFormatRaw {
			hashed = q.EffectiveFormat()
			continue
		}
		if v := strings.TrimSpace(q.Value); v != "" && !known[normalize(q.Type, v)] && !ids[v] {
			ids[v] = true
			fromRequest = true
		}
	}

	if len(ids) == 0 {
		p.Skipped = true
		switch {
		case len(resolved) > 0:
			p.Reason = fmt.Sprintf("no %s identity on %s nor in the request", d.IdentityType, profilesPhrase(resolved))
			if d.DeviceIDPrefix != "" {
				p.Reason += ", and no device id of a device-only profile to map"
			}
		case hashed != "":
			p.Reason = fmt.Sprintf("the request's %s identity is hashed (%s) and no usable profile matches: hashed identities are never forwarded",
				d.IdentityType, hashed)
		case rule == RuleDeviceOnlyProtected:
			p.Reason = fmt.Sprintf("no %s identity in the request, and the matching profiles are protected by a login id", d.IdentityType)
		default:
			p.Reason = fmt.Sprintf("no %s identity in the request and no matching profile", d.IdentityType)
		}
		return p
	}
	p.DistinctIDs = make([]string, 0, len(ids))
	for id := range ids {
		p.DistinctIDs = append(p.DistinctIDs, id)
	}
	slices.Sort(p.DistinctIDs)
	var parts []string
	if len(ofType) > 0 {
		parts = append(parts, fmt.Sprintf("the %s identities of %s", d.IdentityType, listIDs(ofType)))
	}
	if len(asDevice) > 0 {
		parts = append(parts, fmt.Sprintf("the device ids of device-only %s as %s<id>", listIDs(asDevice), d.DeviceIDPrefix))
	}
	if fromRequest {
		parts = append(parts, fmt.Sprintf("the request's own %s", d.IdentityType))
	}
	p.Reason = fmt.Sprintf("%d distinct id(s): %s", len(p.DistinctIDs), strings.Join(parts, ", "))
	return p
}

// hasType reports whether p has an identity of one of types.
func hasType(p Profile, types []string) bool {
	return slices.ContainsFunc(p.Identities, func(id Identity) bool { return slices.Contains(types, id.Type) })
}

func appendUnique(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// listIDs names up to ten profile ids, then counts the rest.
func listIDs(ids []string) string {
	const shown = 10
	if len(ids) <= shown {
		return strings.Join(ids, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(ids[:shown], ", "), len(ids)-shown)
}

func orNone(ids []string) string {
	if len(ids) == 0 {
		return "none"
	}
	return listIDs(ids)
}

func countProfiles(ids []string) string {
	if len(ids) == 1 {
		return "profile " + ids[0]
	}
	return fmt.Sprintf("%d profiles: %s", len(ids), listIDs(ids))
}

func profilesPhrase(ps []Profile) string {
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	if len(ids) == 1 {
		return "profile " + ids[0]
	}
	return "profiles " + listIDs(ids)
}
