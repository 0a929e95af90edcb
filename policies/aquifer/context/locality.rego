# Model locality: where the model runs bounds what it may receive. Confidential and restricted stay on local
# models, external models receive public only, and no model receives more than its own registered ceiling.
package aquifer.context

import rego.v1

# One line per locality: the classifications a model there may receive.
_locality_allows := {
	"local": {"public", "internal", "confidential", "restricted"},
	"sovereign_cloud": {"public", "internal"},
	"external": {"public"},
}

_locality_ok if input.resource.classification in _locality_allows[_model.locality]

resource_deny contains "model_locality" if not _locality_ok

explain("model_locality") := concat("", [
	"this resource is ", _level, ", which may not be sent to model ", _model_id, " (it runs ", _model.locality, ")",
])

explain("model_locality") := "the model is not registered, so nothing may be sent to it" if not _model

_within_ceiling if _rank(_model.max_classification) >= _rank(input.resource.classification)

resource_deny contains "above_model_ceiling" if not _within_ceiling

explain("above_model_ceiling") := concat("", [
	"model ", _model_id, " is registered for at most ", _model.max_classification, " data; this resource is ", _level,
])
