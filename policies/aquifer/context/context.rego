# METADATA
# title: Governed context
# description: |
#   Which agent, for which purpose, through which model, may do which action and see which chunk, and what must be
#   redacted. The registries are data.aquifer.catalog (agents, models, datasets, levels, pii_types), pushed from
#   catalog/ by Aquifer. Each rule file of this package adds reason codes to request_deny or resource_deny (with
#   explain(code), the words a reviewer reads), or one-key objects to obligation; this file only combines them.
#
#   Written for both engines, OPA and rego-cpp (regopy), and fail-closed on both:
#   - a rule that denies on a negation binds first (`_ok if input.x in xs`, then `deny if not _ok`): OPA rewrites
#     `not f(input.x)` to `t := input.x; not f(t)`, which is undefined, not true, when input.x is missing;
#   - no rule puts raw input into its result: explanations name catalog values only (rego-cpp does not escape the
#     strings of its result document), and obligations carry only catalog vocabulary;
#   - rego-cpp quotes computed strings in sprintf and cannot json.marshal arrays, so messages are built with concat;
#     and it carries partial rules over from one `with` iteration to the next, so obligations are a partial set
#     merged by a complete rule and explanations are a function. See docs/policies.md.
package aquifer.context

import rego.v1

# METADATA
# title: request
# description: >-
#   May this agent take this action (for this purpose, through this model)? Input: {action, agent, purpose,
#   model}. Answered before any search, so a request can be refused with its reasons.
# entrypoint: true
request := _document(request_deny, {})

# METADATA
# title: decision
# description: >-
#   The decision for one resource, input.resource = {dataset, layer, classification, pii_types, untrusted}.
#   It includes the request-level denials: a resource decision is safe on its own.
# entrypoint: true
decision := _document(request_deny | resource_deny, obligations)

# What must be done before the resource is served: the union of every obligation rule's one-key object.
obligations := object.union_n([o | some o in obligation])

# METADATA
# title: decisions
# description: One decision per entry of input.resources, in the same order (one round trip for a batch).
# entrypoint: true
decisions := [d |
	some resource in input.resources
	d := decision with input.resource as resource
]

# A denial never depends on its message: codes are plain rules, and a message that cannot be built falls back to
# the code itself, so the deny still stands.
_document(codes, obligations_doc) := {
	"allow": count(codes) == 0,
	"reasons": _sorted_codes(codes),
	"explanations": [_explanation(code) | some code in _sorted_codes(codes)],
	"obligations": obligations_doc,
}

_sorted_codes(codes) := [code | some code in sort(codes)]

# The words for a reason code: explain(code) where a rule file defines it, else the code itself. A function, so
# only the denied codes' texts are ever built.
_explanation(code) := text if {
	text := explain(code)
} else := code

# Shared lookups. An unknown id makes them undefined, and every rule is written as "deny unless proven fine",
# so an undefined lookup denies (fail closed) instead of silently passing.
_catalog := data.aquifer.catalog

_agent := _catalog.agents[input.agent]

_model := _catalog.models[input.model]

_dataset := _catalog.datasets[input.resource.dataset]

_rank(level) := i if _catalog.levels[i] == level

# Names for messages, taken from the catalog (never from the input): defined only when the input names a known id.
_agent_id := id if {
	_catalog.agents[id]
	id == input.agent
}

_model_id := id if {
	_catalog.models[id]
	id == input.model
}

_dataset_id := id if {
	_catalog.datasets[id]
	id == input.resource.dataset
}

_level := level if {
	some level in _catalog.levels
	level == input.resource.classification
} else := "an unknown classification"

# Text of a catalog value for a message.
_s(x) := x if is_string(x)

_s(x) := concat(", ", [e | some e in x; is_string(e)]) if is_array(x)
