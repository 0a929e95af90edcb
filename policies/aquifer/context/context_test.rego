package aquifer.context_test

import rego.v1

import data.aquifer.context

# A small registry of its own, so the tests say exactly what they assume (the real one is catalog/).
catalog := {
	"levels": ["public", "internal", "confidential", "restricted"],
	"pii_types": ["email", "national_id", "person", "phone"],
	"agents": {
		"support": {
			"roles": ["support"], "clearance": "internal",
			"purposes": ["customer_support"], "models": ["local", "eu"], "acts_for": "either",
		},
		"hr": {
			"roles": ["pii_reader"], "clearance": "confidential",
			"purposes": ["hr_casework"], "models": ["local"], "acts_for": "either",
		},
		"analyst": {
			"roles": ["analyst"], "clearance": "restricted",
			"purposes": ["financial_analysis"], "models": ["local"], "acts_for": "self",
		},
		"marketing": {
			"roles": [], "clearance": "public",
			"purposes": ["marketing"], "models": ["external", "local"], "acts_for": "self",
		},
		"auditor": {
			"roles": ["auditor"], "clearance": "internal",
			"purposes": ["audit"], "models": ["local"], "acts_for": "either",
		},
		"partner": {
			"roles": ["pii_reader"], "clearance": "confidential",
			"purposes": ["hr_casework"], "models": ["local"], "acts_for": "user",
		},
		"legacy": {"roles": [], "clearance": "internal", "purposes": ["customer_support"], "models": ["local"]},
		"boss": {
			"roles": ["analyst", "pii_reader"], "clearance": "restricted",
			"purposes": ["customer_support", "hr_casework", "marketing", "financial_analysis"],
			"models": ["local", "eu", "external", "small"], "acts_for": "either",
		},
	},
	"models": {
		"local": {"locality": "local", "max_classification": "restricted"},
		"small": {"locality": "local", "max_classification": "internal"},
		"eu": {"locality": "sovereign_cloud", "max_classification": "internal"},
		"external": {"locality": "external", "max_classification": "public"},
	},
	"datasets": {
		"docs": {
			"classification": "public", "purposes": ["customer_support", "marketing"], "pii_purposes": [],
			"access": open_access,
		},
		"tickets": {
			"classification": "internal", "purposes": ["customer_support"], "pii_purposes": [],
			"access": open_access,
		},
		"cases": {
			"classification": "confidential",
			"purposes": ["hr_casework", "customer_support"], "pii_purposes": ["hr_casework"],
			"access": open_access,
		},
		"finance": {
			"classification": "restricted", "purposes": ["financial_analysis", "hr_casework"], "pii_purposes": [],
			"access": open_access,
		},
		"ledger": {
			"classification": "internal", "purposes": ["financial_analysis", "customer_support"], "pii_purposes": [],
			"access": {"restricted": true, "principals": ["agent:analyst", "group:finance", "user:erin"]},
		},
	},
	"identity": {
		"default_clearance": "internal",
		"groups": {
			"employees": {"roles": [], "clearance": "internal"},
			"hr-north": {"roles": ["pii_reader"], "clearance": "confidential"},
			"hr-south": {"roles": [], "clearance": "confidential"},
			"finance": {"roles": [], "clearance": "restricted"},
			"auditors": {"roles": ["auditor"]},
		},
	},
}

open_access := {"restricted": false, "principals": []}

# A certified, trusted, PII-free resource of `dataset`, with `overrides` applied.
resource(dataset, overrides) := object.union(
	{
		"dataset": dataset,
		"layer": "platinum",
		"classification": catalog.datasets[dataset].classification,
		"pii_types": [],
		"untrusted": false,
		"acl": {"listed": false},
	},
	overrides,
)

test_request_allowed if {
	cat := catalog
	context.request.allow with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as "support"
		with input.purpose as "customer_support"
		with input.model as "local"
}

test_decision_allowed_has_no_reasons if {
	cat := catalog
	d := context.decision with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as "support"
		with input.purpose as "customer_support"
		with input.model as "local"
		with input.resource as resource("tickets", {})
	d.allow
	d.reasons == []
	d.obligations == {}
}

test_decision_carries_request_denials if {
	cat := catalog
	d := context.decision with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as "support"
		with input.purpose as "marketing"
		with input.model as "local"
		with input.resource as resource("docs", {})
	not d.allow
	"purpose_not_allowed" in d.reasons
}

test_reasons_are_sorted_with_one_explanation_each if {
	cat := catalog
	d := context.decision with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as "marketing"
		with input.purpose as "marketing"
		with input.model as "external"
		with input.resource as resource("finance", {"untrusted": true})
	d.reasons == sort(d.reasons)
	count(d.reasons) == count(d.explanations)
	"clearance_below_classification" in d.reasons
	"model_locality" in d.reasons
	"untrusted_content" in d.reasons
}

test_decisions_batch_keeps_order if {
	cat := catalog
	ds := context.decisions with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as "support"
		with input.purpose as "customer_support"
		with input.model as "local"
		with input.resources as [resource("tickets", {}), resource("finance", {}), resource("docs", {})]
	[d.allow | some d in ds] == [true, false, true]
}

test_decisions_batch_does_not_carry_obligations_or_messages_across_resources if {
	cat := catalog
	ds := context.decisions with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as "analyst"
		with input.purpose as "financial_analysis"
		with input.model as "local"
		with input.resources as [
			resource("finance", {"layer": "gold", "pii_types": ["email"]}),
			resource("finance", {}),
			resource("cases", {}),
			resource("docs", {}),
		]
	ds[0].obligations == {"label": "uncertified", "redact": ["email"]}
	ds[1].obligations == {}
	ds[2].reasons == ["purpose_not_allowed_for_dataset"]
	ds[3].reasons == ["purpose_not_allowed_for_dataset"]
	contains(ds[2].explanations[0], "dataset cases")
	contains(ds[3].explanations[0], "dataset docs")
}

test_missing_resource_denied if {
	cat := catalog
	d := context.decision with data.aquifer.catalog as cat
		with input.action as "read_context"
		with input.agent as "support"
		with input.purpose as "customer_support"
		with input.model as "local"
	not d.allow
	"unknown_dataset" in d.reasons
	"layer_not_served" in d.reasons
}
