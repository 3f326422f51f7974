package admission

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Service names the Kubernetes Service in front of the webhook server.
type Service struct {
	Namespace, Name string
	Port            int32
}

// Webhooks renders one ValidatingWebhook per rule of c, for a
// ValidatingWebhookConfiguration: the rule's namespace selector, the path
// /validate/<rule>, the resources this package checks, and failurePolicy
// Fail (see docs/kubernetes.md for the choice). caBundle is the PEM of the
// CA that issued the server's certificate. Namespaces labelled
// quorate.dev/exclude are left out of every rule, so the webhook's own
// namespace can be excluded and the webhook never blocks its own restart.
func (c *Config) Webhooks(svc Service, caBundle []byte) []admissionregistrationv1.ValidatingWebhook {
	fail := admissionregistrationv1.Fail
	equivalent := admissionregistrationv1.Equivalent
	none := admissionregistrationv1.SideEffectClassNone
	timeout := int32(10)
	out := make([]admissionregistrationv1.ValidatingWebhook, 0, len(c.Rules))
	for i := range c.Rules {
		r := &c.Rules[i]
		path := "/validate/" + r.Name
		port := svc.Port
		sel := r.selector()
		sel.MatchExpressions = append(sel.MatchExpressions, excludeRequirement())
		out = append(out, admissionregistrationv1.ValidatingWebhook{
			Name: r.Name + ".admission.quorate.dev",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{
				Service:  &admissionregistrationv1.ServiceReference{Namespace: svc.Namespace, Name: svc.Name, Path: &path, Port: &port},
				CABundle: caBundle,
			},
			Rules:                   webhookRules(),
			FailurePolicy:           &fail,
			MatchPolicy:             &equivalent,
			NamespaceSelector:       sel,
			SideEffects:             &none,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
		})
	}
	return out
}

// ExcludeLabel on a namespace keeps every rule away from it.
const ExcludeLabel = "quorate.dev/exclude"

func excludeRequirement() metav1.LabelSelectorRequirement {
	return metav1.LabelSelectorRequirement{Key: ExcludeLabel, Operator: metav1.LabelSelectorOpDoesNotExist}
}

func webhookRules() []admissionregistrationv1.RuleWithOperations {
	ops := []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}
	scope := admissionregistrationv1.NamespacedScope
	rule := func(group string, resources ...string) admissionregistrationv1.RuleWithOperations {
		return admissionregistrationv1.RuleWithOperations{
			Operations: ops,
			Rule:       admissionregistrationv1.Rule{APIGroups: []string{group}, APIVersions: []string{"v1"}, Resources: resources, Scope: &scope},
		}
	}
	return []admissionregistrationv1.RuleWithOperations{
		rule("", "pods", "pods/ephemeralcontainers"),
		rule("apps", "deployments", "statefulsets", "daemonsets", "replicasets"),
		rule("batch", "jobs", "cronjobs"),
	}
}
