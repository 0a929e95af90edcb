# Purpose limitation: data is used only for a purpose its owner allowed (the agent's own purposes are a request
# rule).
package aquifer.context

import rego.v1

resource_deny contains "unknown_dataset" if not _dataset

explain("unknown_dataset") := "the resource's dataset is not in the catalog: nobody owns it, so nobody may read it"

_dataset_purpose_ok if input.purpose in _dataset.purposes

resource_deny contains "purpose_not_allowed_for_dataset" if {
	_dataset
	not _dataset_purpose_ok
}

explain("purpose_not_allowed_for_dataset") := concat("", [
	"the owner of dataset ", _dataset_id, " allows it for ", _s(_dataset.purposes),
	"; the declared purpose is not one of them",
])
