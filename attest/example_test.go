package attest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/quorate-dev/quorate/attest"
)

// A release approval is an in-toto Statement whose predicate binds the gate,
// the policy version and digest, the request and the expiry. This is the
// payload every party signs ('quorate attest' writes it into an unsigned
// DSSE envelope; 'quorate request create' posts it to the coordinator).
func ExampleNewStatement() {
	created := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	statement, err := attest.NewStatement(
		[]attest.Subject{{
			Name:   "app.tar.gz",
			Digest: map[string]string{"sha256": "5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"},
		}},
		attest.Predicate{
			Gate:      "production",
			Policy:    attest.PolicyRef{Version: 3, Digest: map[string]string{"sha256": "3a40ea2f8345c2b761c6ac82c91c3bea939a6412dbbff37240fd1bada3713192"}},
			RequestID: "4eaff43b92f963262bf9052bd0d477cb",
			Created:   created,
			Expires:   created.Add(72 * time.Hour),
		})
	if err != nil {
		fmt.Println(err)
		return
	}
	var out bytes.Buffer
	if err := json.Indent(&out, statement, "", "  "); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(out.String())

	// The unsigned envelope the parties then sign, one signature each.
	env := attest.NewEnvelope(statement)
	fmt.Println(env.PayloadType, len(env.Signatures))
	// Output:
	// {
	//   "_type": "https://in-toto.io/Statement/v1",
	//   "subject": [
	//     {
	//       "name": "app.tar.gz",
	//       "digest": {
	//         "sha256": "5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
	//       }
	//     }
	//   ],
	//   "predicateType": "https://quorate.dev/release-approval/v1",
	//   "predicate": {
	//     "gate": "production",
	//     "policy": {
	//       "version": 3,
	//       "digest": {
	//         "sha256": "3a40ea2f8345c2b761c6ac82c91c3bea939a6412dbbff37240fd1bada3713192"
	//       }
	//     },
	//     "requestId": "4eaff43b92f963262bf9052bd0d477cb",
	//     "created": "2030-01-02T03:04:05Z",
	//     "expires": "2030-01-05T03:04:05Z"
	//   }
	// }
	// application/vnd.in-toto+json 0
}

// ParseStatement is the strict reader verifiers use: it refuses another
// predicate type, a weak or malformed digest, duplicate JSON keys and
// oversized input, and checks the predicate.
func ExampleParseStatement() {
	payload := []byte(`{"_type":"https://in-toto.io/Statement/v1",
	 "subject":[{"name":"app.tar.gz","digest":{"sha256":"5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"}}],
	 "predicateType":"https://quorate.dev/release-approval/v1",
	 "predicate":{"gate":"staging","policy":{"version":1,"digest":{"sha256":"3a40ea2f8345c2b761c6ac82c91c3bea939a6412dbbff37240fd1bada3713192"}},
	   "requestId":"r1","created":"2030-01-02T03:04:05Z","expires":"2030-01-03T03:04:05Z"}}`)
	st, pred, err := attest.ParseStatement(payload, attest.DefaultLimits)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(st.Subject[0].Name, pred.Gate, pred.Policy.Version, pred.RequestID)

	// The same statement with the gate given twice is refused: two parsers
	// could disagree on which one counts.
	dup := bytes.Replace(payload, []byte(`"gate":"staging"`), []byte(`"gate":"staging","gate":"production"`), 1)
	if _, _, err := attest.ParseStatement(dup, attest.DefaultLimits); err != nil {
		fmt.Println("refused duplicate key")
	}
	// Output:
	// app.tar.gz staging 1 r1
	// refused duplicate key
}
