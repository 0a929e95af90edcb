# METADATA
# title: Governed context
# description: |
#   Which agent, for which purpose, through which model, may see which chunk, and what must be redacted.
#   The registries are data.aquifer.catalog (agents, models, datasets, levels), pushed from catalog/ by Aquifer.
#   Each rule file of this package adds reason codes to request_deny or resource_deny (with explain(code), the
#   words a reviewer reads), or one-key objects to obligation; this file only combines them.
#
#   Written for both engines: Rego v1 for OPA and rego-cpp (regopy). rego-cpp 1.5.2 quotes computed strings in
#   sprintf and cannot json.marshal arrays, so messages are built with concat and _s; and it carries partial-object
#   rules (p.key := v) over from one `with` iteration to the next, so obligations are a partial *set* merged by a
#   complete rule here. See docs/policies.md.
package aquifer.context

import rego.v1

# METADATA
# entrypoint: true
# description: >-
#   May this agent use this purpose with this model at all? Input: {agent, purpose, model}.
#   Answered before any search, so a request can be refused with its reasons.
request := _document(request_deny, {})

# METADATA
# entrypoint: true
# description: >-
#   The decision for one resource, input.resource = {dataset, layer, classification, pii_types, untrusted}.
#   It includes the request-level denials: a resource decision is safe on its own.
decision := _document(request_deny | resource_deny, obligations)

# What must be done before the resource is served: the union of every obligation rule's one-key object.
obligations := object.union_n([o | some o in obligation])

# METADATA
# entrypoint: true
# description: One decision per entry of input.resources, in the same order (the retrieval hot path).
decisions := [d |
	some resource in input.resources
	d := decision with input.resource as resource
]

# A denial never depends on its message: codes are plain rules, and a message that cannot be built (a missing or
# malformed input field) falls back to the code itself, so the deny still stands.
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

# Text of a value for a message.
_s(x) := x if is_string(x)

_s(x) := concat(", ", [e | some e in x; is_string(e)]) if is_array(x)

_s(x) := "(not a string)" if {
	not is_string(x)
	not is_array(x)
}
