# Users: an agent that acts for a user sees at most what the user may see (agent ∩ user). input.user is the user a
# verified token names ({issuer, subject, groups, attributes}; Aquifer verifies the token, the policy never sees it)
# or absent. The agent's catalog entry says for whom it acts: acts_for self (no user), user (always one) or either.
package aquifer.context

import rego.v1

_has_user if is_object(input.user)

# What the agent's registration allows; an unknown acts_for allows neither, so both rules below deny.
_may_act_alone if _agent.acts_for in {"self", "either"}

_may_act_for_user if _agent.acts_for in {"user", "either"}

request_deny contains "user_token_required" if {
	_agent
	not _has_user
	not _may_act_alone
}

explain("user_token_required") := concat("", [
	"agent ", _agent_id, " acts only on behalf of a user (acts_for: user); the request carries no user token",
])

request_deny contains "agent_acts_for_itself" if {
	_agent
	_has_user
	not _may_act_for_user
}

explain("agent_acts_for_itself") := concat("", [
	"agent ", _agent_id, " acts only for itself (acts_for: self), so it may not be used on behalf of a user",
])

# What the user's IdP groups grant (catalog/identity.yaml): roles, and a clearance, the highest of their groups'
# and never below the default.
_user_roles contains role if {
	some group in input.user.groups
	some role in _catalog.identity.groups[group].roles
}

_user_levels contains level if {
	some group in input.user.groups
	level := _catalog.identity.groups[group].clearance
}

_user_levels contains _catalog.identity.default_clearance if _has_user

_user_rank := max({_rank(level) | some level in _user_levels})

_user_within_clearance if _user_rank >= _rank(input.resource.classification)

resource_deny contains "user_clearance_below_classification" if {
	_has_user
	not _user_within_clearance
}

explain("user_clearance_below_classification") := concat("", [
	"the user's groups clear them for ", _user_level_name, " data; this resource is ", _level,
])

_user_level_name := name if {
	name := _catalog.levels[_user_rank]
} else := "no"

# Reading decision records on behalf of a user needs a user with role auditor too, not only an auditor agent.
_user_auditor if "auditor" in _user_roles

request_deny contains "user_role_required" if {
	input.action == "read_decisions"
	_has_user
	not _user_auditor
}

explain("user_role_required") := "reading decision records on behalf of a user needs a user in a group with role auditor"
