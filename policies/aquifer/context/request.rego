# Request-level rules: who is asking, for which action, purpose and model; decided before any search.
package aquifer.context

import rego.v1

request_deny contains "unknown_agent" if not _agent

explain("unknown_agent") := "the calling agent is not registered in catalog/agents"

request_deny contains "unknown_model" if {
	_uses_model
	not _model
}

explain("unknown_model") := "the model is not registered in catalog/models, so nothing may be sent to it"

_purpose_ok if input.purpose in _agent.purposes

# (An unknown agent is denied above; these two rules say what a known agent may do.)
request_deny contains "purpose_not_allowed" if {
	_agent
	_needs_purpose
	not _purpose_ok
}

explain("purpose_not_allowed") := concat("", [
	"agent ", _agent_id, " may act only for ", _s(_agent.purposes), "; the declared purpose is not one of them",
])

_model_ok if input.model in _agent.models

request_deny contains "model_not_allowed" if {
	_agent
	_uses_model
	not _model_ok
}

explain("model_not_allowed") := concat("", [
	"agent ", _agent_id, " may send context only to ", _s(_agent.models), "; the requested model is not one of them",
])
