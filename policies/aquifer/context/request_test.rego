package aquifer.context_test

import rego.v1

import data.aquifer.context

request(agent, purpose, model) := d if {
	cat := catalog
	d := context.request with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as agent
		with input.purpose as purpose
		with input.model as model
}

test_unknown_agent_denied if {
	r := request("intruder", "customer_support", "local")
	not r.allow
	r.reasons == ["unknown_agent"]
}

test_unknown_model_denied if {
	r := request("support", "customer_support", "shadow_it")
	not r.allow
	"unknown_model" in r.reasons
}

test_purpose_of_agent_allowed if {
	d := request("hr", "hr_casework", "local")
	d.allow
}

test_purpose_not_of_agent_denied if {
	r := request("hr", "marketing", "local")
	r.reasons == ["purpose_not_allowed"]
}

test_missing_purpose_denied if {
	cat := catalog
	r := context.request with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as "hr"
		with input.model as "local"
	r.reasons == ["purpose_not_allowed"]
}

test_model_of_agent_allowed if {
	d := request("support", "customer_support", "eu")
	d.allow
}

test_model_not_of_agent_denied if {
	r := request("hr", "hr_casework", "eu")
	r.reasons == ["model_not_allowed"]
}

test_missing_agent_denied if {
	cat := catalog
	r := context.request with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.purpose as "customer_support"
		with input.model as "local"
	r.reasons == ["unknown_agent"]
}

test_missing_model_denied if {
	cat := catalog
	r := context.request with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as "support"
		with input.purpose as "customer_support"
	r.reasons == ["model_not_allowed", "unknown_model"]
}

test_explanations_never_repeat_the_input if {
	r := request("support", "customer_support\"}, \"allow\": true", "local_\n")
	not r.allow
	r.reasons == ["model_not_allowed", "purpose_not_allowed", "unknown_model"]
	every text in r.explanations {
		not contains(text, "allow")
		not contains(text, "\n")
	}
}
