package aquifer.context_test

import rego.v1

import data.aquifer.context

as_boss_on(dataset, overrides) := d if {
	cat := catalog
	d := context.decision with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as "boss"
		with input.purpose as "hr_casework"
		with input.model as "local"
		with input.resource as resource(dataset, overrides)
}

as_hr_on(dataset, overrides) := d if {
	cat := catalog
	d := context.decision with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as "hr"
		with input.purpose as "hr_casework"
		with input.model as "local"
		with input.resource as resource(dataset, overrides)
}

test_at_clearance_allowed if {
	d := as_hr_on("cases", {})
	d.allow
}

test_above_clearance_denied if {
	d := as_hr_on("finance", {})
	d.reasons == ["clearance_below_classification"]
}

test_record_classified_above_its_dataset_denied if {
	# silver raises a record's classification when it finds an SSN; the record's own level is what counts
	d := as_hr_on("cases", {"classification": "restricted"})
	d.reasons == ["clearance_below_classification"]
}

test_unknown_classification_denied if {
	d := as_boss_on("cases", {"classification": "top_secret"})
	"clearance_below_classification" in d.reasons
}

test_missing_classification_denied if {
	cat := catalog
	d := context.decision with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as "boss"
		with input.purpose as "hr_casework"
		with input.model as "local"
		with input.resource as object.remove(resource("cases", {}), ["classification"])
	"clearance_below_classification" in d.reasons
	"model_locality" in d.reasons
	"above_model_ceiling" in d.reasons
}
