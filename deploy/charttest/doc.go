// Package charttest renders the Gatehouse Helm chart (deploy/helm/gatehouse) with Helm's Go
// SDK and decodes every manifest strictly into the Kubernetes API types, and builds the
// static binary with deploy/build-static.sh the way deploy/Dockerfile does.
//
// It is its own module so that Helm and the Kubernetes libraries stay out of the product's
// go.mod. Run it from this directory:
//
//	cd deploy/charttest && go test -count=1 ./...
package charttest
