package aquifer.context_test

import rego.v1

import data.aquifer.context

request(agent, purpose, model) := d if {
	cat := catalog
	d := context.request with data.aquifer.catalog as cat
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
	r := context.request with data.aquifer.catalog as cat with input.agent as "hr" with input.model as "local"
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
