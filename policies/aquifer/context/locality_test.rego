package aquifer.context_test

import rego.v1

import data.aquifer.context

via(model, dataset) := d if {
	cat := catalog
	d := context.decision with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as "boss"
		with input.purpose as "financial_analysis"
		with input.model as model
		with input.resource as resource(dataset, {"classification": "public"})
}

classified(model, level) := d if {
	cat := catalog
	d := context.decision with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as "boss"
		with input.purpose as "hr_casework"
		with input.model as model
		with input.resource as resource("cases", {"classification": level})
}

test_restricted_to_local_allowed if {
	d := classified("local", "restricted")
	d.allow
}

test_confidential_to_sovereign_denied if {
	d := classified("eu", "confidential")
	"model_locality" in d.reasons
}

test_internal_to_sovereign_allowed if {
	d := classified("eu", "internal")
	d.allow
}

test_internal_to_external_denied if {
	d := classified("external", "internal")
	"model_locality" in d.reasons
}

test_public_to_external_allowed if {
	cat := catalog
	d := context.decision with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as "boss"
		with input.purpose as "marketing"
		with input.model as "external"
		with input.resource as resource("docs", {})
	d.allow
}

test_above_model_ceiling_denied if {
	# a local model whose owner registered it for internal data at most
	d := classified("small", "confidential")
	d.reasons == ["above_model_ceiling"]
}

test_within_model_ceiling_allowed if {
	d := classified("small", "internal")
	d.allow
}

test_unknown_model_denies_every_resource if {
	d := via("shadow_it", "finance")
	"unknown_model" in d.reasons
	"model_locality" in d.reasons
}
