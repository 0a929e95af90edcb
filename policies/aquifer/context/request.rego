# METADATA
# title: Request-level rules
# description: Who is asking, for what purpose, through which model; decided before any search.
package aquifer.context

import rego.v1

request_deny contains "unknown_agent" if not _agent

explain("unknown_agent") := concat("", [
	"agent ", _s(input.agent),
	" is not registered in catalog/agents",
])

request_deny contains "unknown_model" if not _model

explain("unknown_model") := concat("", [
	"model ", _s(input.model),
	" is not registered in catalog/models, so nothing may be sent to it",
])

# (An unknown agent is denied above; these two rules say what a known agent may do.)
request_deny contains "purpose_not_allowed" if {
	_agent
	not input.purpose in _agent.purposes
}

explain("purpose_not_allowed") := concat("", [
	"agent ", _s(input.agent), " may act only for ", _s(_agent.purposes),
	"; purpose ", _s(input.purpose), " is not one of them",
])

request_deny contains "model_not_allowed" if {
	_agent
	not input.model in _agent.models
}

explain("model_not_allowed") := concat("", [
	"agent ", _s(input.agent), " may send context only to ", _s(_agent.models), ", not to ", _s(input.model),
])
