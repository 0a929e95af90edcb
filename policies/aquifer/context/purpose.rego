# METADATA
# title: Purpose limitation
# description: Data is used only for a purpose its owner allowed (the agent's own purposes are a request rule).
package aquifer.context

import rego.v1

resource_deny contains "unknown_dataset" if not _dataset

explain("unknown_dataset") := concat("", [
	"dataset ", _s(input.resource.dataset), " is not in the catalog: nobody owns it, so nobody may read it",
])

resource_deny contains "purpose_not_allowed_for_dataset" if {
	_dataset
	not input.purpose in _dataset.purposes
}

explain("purpose_not_allowed_for_dataset") := concat("", [
	"the owner of dataset ", _s(input.resource.dataset), " allows it for ", _s(_dataset.purposes),
	"; purpose ", _s(input.purpose), " is not one of them",
])
