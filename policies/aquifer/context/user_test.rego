package aquifer.context_test

import rego.v1

import data.aquifer.context

user(subject, groups) := {"issuer": "idp", "subject": subject, "groups": groups, "attributes": {}}

# The decision for `agent` acting for `u` on a resource of `dataset` (purpose and model given).
for_user(agent, purpose, u, dataset, overrides) := d if {
	cat := catalog
	d := context.decision with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as agent
		with input.purpose as purpose
		with input.model as "local"
		with input.user as u
		with input.resource as resource(dataset, overrides)
}

alone(agent, purpose, dataset, overrides) := d if {
	cat := catalog
	d := context.decision with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as agent
		with input.purpose as purpose
		with input.model as "local"
		with input.resource as resource(dataset, overrides)
}

request_for(agent, purpose, u) := d if {
	cat := catalog
	d := context.request with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as agent
		with input.purpose as purpose
		with input.model as "local"
		with input.user as u
}

request_alone(agent, purpose) := d if {
	cat := catalog
	d := context.request with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as agent
		with input.purpose as purpose
		with input.model as "local"
}

test_acts_for_user_without_user_denied if {
	d := request_alone("partner", "hr_casework")
	d.reasons == ["user_token_required"]
}

test_acts_for_user_with_user_allowed if {
	d := request_for("partner", "hr_casework", user("amira", ["hr-north"]))
	d.allow
}

test_acts_for_self_with_user_denied if {
	d := request_for("marketing", "marketing", user("amira", ["employees"]))
	d.reasons == ["agent_acts_for_itself"]
}

test_acts_for_either_both_allowed if {
	request_alone("support", "customer_support").allow
	request_for("support", "customer_support", user("chloe", ["employees"])).allow
}

test_acts_for_missing_denies_both_ways if {
	# an agent registered without acts_for (or with a value the policy does not know) acts neither way
	request_alone("legacy", "customer_support").reasons == ["user_token_required"]
	request_for("legacy", "customer_support", user("chloe", [])).reasons == ["agent_acts_for_itself"]
}

test_user_that_is_not_an_object_is_no_user if {
	d := request_for("partner", "hr_casework", "amira")
	d.reasons == ["user_token_required"]
}

test_user_clearance_bounds_agent if {
	# the boss agent is cleared for restricted; the user's groups clear them for internal only
	d := for_user("boss", "financial_analysis", user("gus", ["employees"]), "finance", {})
	d.reasons == ["user_clearance_below_classification"]
	d.explanations == ["the user's groups clear them for internal data; this resource is restricted"]
}

test_agent_clearance_bounds_user if {
	# the user may read restricted data, the hr agent may not: the lower of the two wins
	d := for_user("hr", "hr_casework", user("erin", ["finance"]), "finance", {})
	d.reasons == ["clearance_below_classification"]
}

test_user_clearance_is_the_highest_of_their_groups if {
	for_user("hr", "hr_casework", user("amira", ["employees", "hr-north"]), "cases", {}).allow
}

test_user_without_groups_has_the_default_clearance if {
	for_user("support", "customer_support", user("chloe", []), "tickets", {}).allow
	d := for_user("support", "customer_support", user("chloe", []), "cases", {"classification": "internal"})
	d.allow
	e := for_user("boss", "customer_support", user("chloe", []), "cases", {})
	e.reasons == ["user_clearance_below_classification"]
}

test_unknown_groups_grant_nothing if {
	d := for_user("boss", "financial_analysis", user("mallory", ["finance-admins", "root"]), "finance", {})
	d.reasons == ["user_clearance_below_classification"]
}

test_missing_default_clearance_fails_closed if {
	cat := json.remove(catalog, ["identity/default_clearance"])
	d := context.decision with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as "support"
		with input.purpose as "customer_support"
		with input.model as "local"
		with input.user as user("chloe", [])
		with input.resource as resource("tickets", {})
	d.reasons == ["user_clearance_below_classification"]
	d.explanations == ["the user's groups clear them for no data; this resource is internal"]
}

test_pii_unredacted_only_when_agent_and_user_are_readers if {
	reader := for_user("hr", "hr_casework", user("amira", ["hr-north"]), "cases", {"pii_types": ["phone"]})
	reader.allow
	reader.obligations == {}
	other := for_user("hr", "hr_casework", user("ben", ["hr-south"]), "cases", {"pii_types": ["phone"]})
	other.allow
	other.obligations == {"redact": ["phone"]}
}

test_pii_unredacted_for_reader_agent_acting_alone if {
	d := alone("hr", "hr_casework", "cases", {"pii_types": ["phone"]})
	d.obligations == {}
}

decisions_request(u) := d if {
	cat := catalog
	d := context.request with data.aquifer.catalog as cat
		with input.action as "read_decisions"
		with input.agent as "auditor"
		with input.user as u
}

test_read_decisions_for_a_user_needs_an_auditor_user if {
	decisions_request(user("farid", ["auditors"])).allow
	d := decisions_request(user("gus", ["employees"]))
	d.reasons == ["user_role_required"]
}
