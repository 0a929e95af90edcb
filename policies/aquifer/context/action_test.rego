package aquifer.context_test

import rego.v1

import data.aquifer.context

# The request decision of `action` by `agent` with only the fields that action names.
act(action, agent, purpose, model) := d if {
	cat := catalog
	d := context.request with data.aquifer.catalog as cat
		with input.action as action
		with input.agent as agent
		with input.purpose as purpose
		with input.model as model
}

test_read_decisions_allowed_to_auditor_without_purpose_or_model if {
	cat := catalog
	d := context.request with data.aquifer.catalog as cat
		with input.action as "read_decisions"
		with input.agent as "auditor"
	d.allow
}

test_read_decisions_denied_without_auditor_role if {
	cat := catalog
	d := context.request with data.aquifer.catalog as cat
		with input.action as "read_decisions"
		with input.agent as "boss"
	d.reasons == ["role_required"]
	contains(d.explanations[0], "auditor")
}

test_read_decisions_denied_to_unknown_agent if {
	cat := catalog
	d := context.request with data.aquifer.catalog as cat
		with input.action as "read_decisions"
		with input.agent as "intruder"
	d.reasons == ["unknown_agent"]
}

test_list_models_allows_the_agents_own_models_without_purpose if {
	cat := catalog
	d := context.request with data.aquifer.catalog as cat
		with input.action as "list_models"
		with input.agent as "support"
		with input.model as "eu"
	d.allow
}

test_list_models_denies_a_model_the_agent_may_not_use if {
	cat := catalog
	d := context.request with data.aquifer.catalog as cat
		with input.action as "list_models"
		with input.agent as "support"
		with input.model as "external"
	d.reasons == ["model_not_allowed"]
}

test_list_models_denies_an_unregistered_model if {
	cat := catalog
	d := context.request with data.aquifer.catalog as cat
		with input.action as "list_models"
		with input.agent as "support"
		with input.model as "shadow_it"
	d.reasons == ["model_not_allowed", "unknown_model"]
}

test_chat_and_lineage_need_the_agents_purpose if {
	every action in ["chat", "read_lineage", "read_context"] {
		act(action, "support", "customer_support", "local").allow
		act(action, "support", "marketing", "local").reasons == ["purpose_not_allowed"]
	}
}

test_unknown_action_denied if {
	d := act("delete_everything", "boss", "marketing", "local")
	d.reasons == ["unknown_action"]
}

test_missing_action_denied if {
	cat := catalog
	d := context.request with data.aquifer.catalog as cat
		with input.agent as "boss"
		with input.purpose as "marketing"
		with input.model as "local"
	d.reasons == ["unknown_action"]
}

test_non_string_action_denied if {
	d := act(["read_context"], "boss", "marketing", "local")
	d.reasons == ["unknown_action"]
}

test_actions_that_read_no_data_serve_no_resource if {
	cat := catalog
	d := context.decision with data.aquifer.catalog as cat
		with input.action as "list_models"
		with input.agent as "boss"
		with input.model as "local"
		with input.resource as resource("docs", {})
	not d.allow
	"action_reads_no_resources" in d.reasons
}
