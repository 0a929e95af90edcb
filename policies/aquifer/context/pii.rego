# METADATA
# title: Personal data
# description: >-
#   A chunk with PII is served only with its PII types redacted, unless the agent is a pii_reader acting for a
#   purpose the dataset allows PII for.
package aquifer.context

import rego.v1

_may_read_pii if {
	"pii_reader" in _agent.roles
	input.purpose in _dataset.pii_purposes
}

obligation contains {"redact": [t | some t in sort({t | some t in input.resource.pii_types})]} if {
	count(input.resource.pii_types) > 0
	not _may_read_pii
}

# A resource that does not say which PII it holds cannot be redacted correctly.
resource_deny contains "pii_unknown" if not is_array(input.resource.pii_types)

explain("pii_unknown") := "the resource does not list its PII types, so they cannot be redacted"
