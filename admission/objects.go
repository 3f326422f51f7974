package admission

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/quorate-dev/quorate/internal/strictjson"
)

// kindKey identifies an object kind as the AdmissionRequest names it.
type kindKey struct{ group, version, kind string }

// workload is what this package reads from an object: the metadata that may
// carry the break-glass annotation and the pod spec whose images are checked.
type workload struct {
	meta     []*metav1.ObjectMeta // the object's, then its pod template's
	spec     *corev1.PodSpec
	specPath string // "spec", "spec.template.spec", …
}

// decoders decode each kind this package checks. Decoding is strict: a field
// the k8s.io/api types do not know is refused, so a container list added by
// a newer Kubernetes cannot slip past unchecked (the webhook fails closed and
// says which field; upgrading quorate fixes it).
var decoders = map[kindKey]func([]byte) (workload, error){
	{"", "v1", "Pod"}: decodeAs(func(o *corev1.Pod) workload {
		return workload{meta: []*metav1.ObjectMeta{&o.ObjectMeta}, spec: &o.Spec, specPath: "spec"}
	}),
	{"apps", "v1", "Deployment"}:  decodeAs(func(o *appsv1.Deployment) workload { return templated(&o.ObjectMeta, &o.Spec.Template) }),
	{"apps", "v1", "StatefulSet"}: decodeAs(func(o *appsv1.StatefulSet) workload { return templated(&o.ObjectMeta, &o.Spec.Template) }),
	{"apps", "v1", "DaemonSet"}:   decodeAs(func(o *appsv1.DaemonSet) workload { return templated(&o.ObjectMeta, &o.Spec.Template) }),
	{"apps", "v1", "ReplicaSet"}:  decodeAs(func(o *appsv1.ReplicaSet) workload { return templated(&o.ObjectMeta, &o.Spec.Template) }),
	{"batch", "v1", "Job"}:        decodeAs(func(o *batchv1.Job) workload { return templated(&o.ObjectMeta, &o.Spec.Template) }),
	{"batch", "v1", "CronJob"}: decodeAs(func(o *batchv1.CronJob) workload {
		w := templated(&o.ObjectMeta, &o.Spec.JobTemplate.Spec.Template)
		w.specPath = "spec.jobTemplate.spec.template.spec"
		w.meta = append(w.meta, &o.Spec.JobTemplate.ObjectMeta)
		return w
	}),
}

// decodeAs returns a decoder into T that describes it with get.
func decodeAs[T any](get func(*T) workload) func([]byte) (workload, error) {
	return func(b []byte) (workload, error) {
		var o T
		if err := strictjson.Unmarshal(b, &o); err != nil {
			return workload{}, err
		}
		return get(&o), nil
	}
}

func templated(m *metav1.ObjectMeta, t *corev1.PodTemplateSpec) workload {
	return workload{meta: []*metav1.ObjectMeta{m, &t.ObjectMeta}, spec: &t.Spec, specPath: "spec.template.spec"}
}

// container is one image use in a pod spec.
type container struct {
	path  string // "spec.template.spec.initContainers[0]"
	name  string
	image string
}

// containers lists every container, init container and ephemeral container
// of w's pod spec.
func (w workload) containers() []container {
	var out []container
	for i, c := range w.spec.InitContainers {
		out = append(out, container{fmt.Sprintf("%s.initContainers[%d]", w.specPath, i), c.Name, c.Image})
	}
	for i, c := range w.spec.Containers {
		out = append(out, container{fmt.Sprintf("%s.containers[%d]", w.specPath, i), c.Name, c.Image})
	}
	for i, c := range w.spec.EphemeralContainers {
		out = append(out, container{fmt.Sprintf("%s.ephemeralContainers[%d]", w.specPath, i), c.Name, c.Image})
	}
	return out
}

// annotation returns the first non-empty value of key on w's metadata.
func (w workload) annotation(key string) string {
	for _, m := range w.meta {
		if v := m.Annotations[key]; v != "" {
			return v
		}
	}
	return ""
}

// name returns the object's name (generateName with a '*' when it has none
// yet, as for pods of a ReplicaSet).
func (w workload) name() string {
	m := w.meta[0]
	if m.Name == "" && m.GenerateName != "" {
		return m.GenerateName + "*"
	}
	return m.Name
}
