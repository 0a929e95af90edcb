# Access lists: who the data itself says may read it. A dataset may list principals in its catalog entry (access),
# and each document may carry its own ACL from the record (input.resource.acl). A principal is group:<IdP group>,
# user:<subject> or agent:<agent id>; the request holds the user's principals when an agent acts for a user,
# else the agent's own. An ACL admits the request when it lists one of them.
package aquifer.context

import rego.v1

# (is_string first: OPA stops the whole evaluation on a concat of a non-string, where rego-cpp leaves it undefined)
_principals contains concat(":", ["user", input.user.subject]) if {
	_has_user
	is_string(input.user.subject)
}

_principals contains concat(":", ["group", group]) if {
	_has_user
	some group in input.user.groups
	is_string(group)
}

_principals contains concat(":", ["agent", input.agent]) if {
	not _has_user
	is_string(input.agent)
}

# Dataset access (catalog/sources/<id>.yaml access): open unless restricted.
_dataset_open if _dataset.access.restricted == false

_dataset_admits if {
	some p in _dataset.access.principals
	p in _principals
}

resource_deny contains "not_in_dataset_access" if {
	_dataset
	not _dataset_open
	not _dataset_admits
}

explain("not_in_dataset_access") := concat("", [
	"dataset ", _dataset_id, " may be read only by ", _s(_dataset.access.principals),
	"; the request is not on behalf of any of them",
])

# Document ACL: input.resource.acl is {"listed": false} (the document carries none: the dataset rules decide),
# {"listed": true, "principals": [...]}, or {"prefilter": true} when Aquifer decides a resource class for its
# search prefilter: the index then admits documents by the same principals, and every chunk the search returns is
# decided again here with its own ACL. Anything else (absent, malformed) denies.
_document_open if input.resource.acl.listed == false

_document_at_prefilter if input.resource.acl.prefilter == true

_document_admits if {
	input.resource.acl.listed == true
	some p in input.resource.acl.principals
	p in _principals
}

resource_deny contains "not_in_document_acl" if {
	not _document_open
	not _document_at_prefilter
	not _document_admits
}

explain("not_in_document_acl") := "the document's access list does not name the user, any of their groups, or the agent acting for itself"
