package aquifer.context_test

import rego.v1

import data.aquifer.context

as_support_on(dataset) := d if {
	cat := catalog
	d := context.decision with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as "support"
		with input.purpose as "customer_support"
		with input.model as "local"
		with input.resource as resource(dataset, {})
}

test_dataset_purpose_allowed if {
	d := as_support_on("docs")
	d.allow
}

test_dataset_purpose_denied if {
	cat := catalog
	d := context.decision with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as "boss"
		with input.purpose as "marketing"
		with input.model as "local"
		with input.resource as resource("tickets", {})
	d.reasons == ["purpose_not_allowed_for_dataset"]
}

test_unknown_dataset_denied if {
	cat := catalog
	d := context.decision with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as "support"
		with input.purpose as "customer_support"
		with input.model as "local"
		with input.resource as object.union(resource("docs", {}), {"dataset": "shadow"})
	d.reasons == ["unknown_dataset"]
}

test_missing_dataset_denied if {
	d := as_support_on_resource(object.remove(resource("docs", {}), ["dataset"]))
	d.reasons == ["unknown_dataset"]
}

as_support_on_resource(res) := d if {
	cat := catalog
	d := context.decision with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as "support"
		with input.purpose as "customer_support"
		with input.model as "local"
		with input.resource as res
}

test_missing_purpose_denied_for_dataset if {
	cat := catalog
	d := context.decision with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as "support"
		with input.model as "local"
		with input.resource as resource("docs", {})
	"purpose_not_allowed_for_dataset" in d.reasons
	"purpose_not_allowed" in d.reasons
}
