# Actions: what each route of the service asks permission for, and what it needs.
package aquifer.context

import rego.v1

# One line per action: does it need a declared purpose, does it name a model, does it read resources (chunks)?
_actions := {
	"read_context": {"purpose": true, "model": true, "resources": true},
	"chat": {"purpose": true, "model": true, "resources": true},
	"read_lineage": {"purpose": true, "model": true, "resources": true},
	"list_models": {"purpose": false, "model": true, "resources": false},
	"read_decisions": {"purpose": false, "model": false, "resources": false},
}

_action := _actions[input.action]

_needs_purpose if _action.purpose == true

_uses_model if _action.model == true

request_deny contains "unknown_action" if not _action

explain("unknown_action") := concat("", [
	"the action is not one the policy knows (", _s(sort([a | _actions[a]])), ")",
])

_reads_resources if _action.resources == true

resource_deny contains "action_reads_no_resources" if {
	_action
	not _reads_resources
}

explain("action_reads_no_resources") := "this action does not read data, so no resource is served through it"

# Decision records are evidence about every agent: only auditors read them.
_auditor if "auditor" in _agent.roles

request_deny contains "role_required" if {
	input.action == "read_decisions"
	_agent
	not _auditor
}

explain("role_required") := concat("", [
	"only agents with role auditor may read decision records; agent ", _agent_id, " has roles [",
	_s(_agent.roles), "]",
])
