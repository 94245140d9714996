package tests

import (
	"os"
	"strings"
	"testing"

	"github.com/fsmgen/fsmgen/gen/spec"
)

// TestReadmeExampleIsValid keeps the README's complete spec example honest:
// it must parse and validate.
func TestReadmeExampleIsValid(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const open = "```yaml\nmachine: door"
	i := strings.Index(string(readme), open)
	if i < 0 {
		t.Fatal("README.md has no ```yaml block starting with \"machine: door\"")
	}
	body := string(readme[i+len("```yaml\n"):])
	body = body[:strings.Index(body, "```")]
	m, err := spec.Parse("README.md example", []byte(body))
	if err != nil {
		t.Fatalf("the README's example spec is invalid:\n%v", err)
	}
	if len(m.States) != 3 || len(m.Transitions) == 0 {
		t.Fatalf("parsed %d states, %d transitions", len(m.States), len(m.Transitions))
	}
}
