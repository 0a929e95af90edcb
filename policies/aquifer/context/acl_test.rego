package aquifer.context_test

import rego.v1

import data.aquifer.context

listed(principals) := {"acl": {"listed": true, "principals": principals}}

test_open_dataset_needs_no_principal if {
	alone("support", "customer_support", "tickets", {}).allow
}

test_dataset_access_admits_the_listed_agent_acting_alone if {
	alone("analyst", "financial_analysis", "ledger", {}).allow
}

test_dataset_access_denies_an_unlisted_agent if {
	d := alone("support", "customer_support", "ledger", {})
	d.reasons == ["not_in_dataset_access"]
	d.explanations == [
		"dataset ledger may be read only by agent:analyst, group:finance, user:erin; the request is not on behalf of any of them",
	]
}

test_dataset_access_admits_a_listed_user_or_group if {
	for_user("support", "customer_support", user("erin", []), "ledger", {}).allow
	for_user("support", "customer_support", user("zoe", ["finance"]), "ledger", {}).allow
}

test_dataset_access_denies_an_unlisted_user if {
	d := for_user("support", "customer_support", user("gus", ["employees"]), "ledger", {})
	d.reasons == ["not_in_dataset_access"]
}

test_agent_grant_does_not_extend_to_its_users if {
	# agent:analyst is listed, but acting for a user it holds the user's principals only (agent ∩ user)
	cat := catalog
	d := context.decision with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as "boss"
		with input.purpose as "financial_analysis"
		with input.model as "local"
		with input.user as user("analyst", ["employees"])
		with input.resource as resource("ledger", {})
	d.reasons == ["not_in_dataset_access"]
}

test_principal_kinds_do_not_mix if {
	# a user whose subject is "finance" is not the group finance; a user named "analyst" is not agent:analyst
	d := for_user("support", "customer_support", user("finance", []), "ledger", {})
	d.reasons == ["not_in_dataset_access"]
}

test_dataset_without_access_entry_denied if {
	cat := json.remove(catalog, ["datasets/tickets/access"])
	d := context.decision with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as "support"
		with input.purpose as "customer_support"
		with input.model as "local"
		with input.resource as resource("tickets", {})
	d.reasons == ["not_in_dataset_access"]
}

test_document_acl_admits_a_group_member if {
	for_user("hr", "hr_casework", user("amira", ["hr-north"]), "cases", listed(["group:hr-north", "user:hana"])).allow
}

test_document_acl_admits_a_named_user if {
	for_user("hr", "hr_casework", user("hana", ["hr-south"]), "cases", listed(["group:hr-north", "user:hana"])).allow
}

test_document_acl_denies_everyone_else if {
	d := for_user("hr", "hr_casework", user("ben", ["hr-south"]), "cases", listed(["group:hr-north", "user:hana"]))
	d.reasons == ["not_in_document_acl"]
}

test_document_acl_admits_a_listed_agent_acting_alone_only if {
	alone("hr", "hr_casework", "cases", listed(["agent:hr"])).allow
	d := for_user("hr", "hr_casework", user("ben", ["hr-south"]), "cases", listed(["agent:hr"]))
	d.reasons == ["not_in_document_acl"]
}

test_document_acl_listing_nobody_denied if {
	d := for_user("hr", "hr_casework", user("amira", ["hr-north"]), "cases", listed([]))
	d.reasons == ["not_in_document_acl"]
}

test_document_acl_missing_or_malformed_denied if {
	# (object.union merges objects, so each case replaces "listed" explicitly or is not an object)
	every acl in [null, "everyone", {"listed": null, "principals": ["group:hr-north"]}, {"listed": "false"}, {"listed": true}, {"listed": true, "principals": "group:hr-north"}] {
		d := for_user("hr", "hr_casework", user("amira", ["hr-north"]), "cases", {"acl": acl})
		d.reasons == ["not_in_document_acl"]
	}
}

test_document_without_acl_attribute_denied if {
	cat := catalog
	d := context.decision with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as "hr"
		with input.purpose as "hr_casework"
		with input.model as "local"
		with input.resource as json.remove(resource("cases", {}), ["acl"])
	d.reasons == ["not_in_document_acl"]
}

test_prefilter_class_defers_the_document_acl if {
	d := for_user("hr", "hr_casework", user("ben", ["hr-south"]), "cases", {"acl": {"prefilter": true}})
	d.allow
}

test_prefilter_class_still_applies_every_other_rule if {
	d := for_user("hr", "hr_casework", user("ben", ["hr-south"]), "finance", {"acl": {"prefilter": true}})
	d.reasons == ["clearance_below_classification", "user_clearance_below_classification"]
	e := for_user("support", "customer_support", user("gus", []), "ledger", {"acl": {"prefilter": true}})
	e.reasons == ["not_in_dataset_access"]
}

test_malformed_user_names_hold_no_principal if {
	# a subject or group that is not text names no one (and stops neither engine)
	bad := {"issuer": "idp", "subject": 7, "groups": [1, [], {"a": 1}, "hr-north"], "attributes": {}}
	d := for_user("hr", "hr_casework", bad, "cases", listed(["user:7", "group:hr-north"]))
	d.allow
	e := for_user("hr", "hr_casework", bad, "cases", listed(["user:7"]))
	e.reasons == ["not_in_document_acl"]
}
