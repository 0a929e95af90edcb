# Personal data: a chunk with PII is served only with its PII types redacted, unless the agent is a pii_reader
# acting for a purpose the dataset allows PII for, and, when it acts for a user, the user's groups grant pii_reader
# too.
package aquifer.context

import rego.v1

_may_read_pii if {
	"pii_reader" in _agent.roles
	input.purpose in _dataset.pii_purposes
	_user_may_read_pii
}

_user_may_read_pii if not _has_user

_user_may_read_pii if "pii_reader" in _user_roles

# The resource lists its PII types, each one of the catalog's: only then can it be redacted correctly.
_pii_listed if {
	is_array(input.resource.pii_types)
	every t in input.resource.pii_types {
		t in _catalog.pii_types
	}
}

obligation contains {"redact": [t | some t in sort({t | some t in input.resource.pii_types})]} if {
	_pii_listed
	count(input.resource.pii_types) > 0
	not _may_read_pii
}

resource_deny contains "pii_unknown" if not _pii_listed

explain("pii_unknown") := concat("", [
	"the resource does not list its PII types as known types (", _s(_catalog.pii_types),
	"), so they cannot be redacted",
])
