package httpapi

import (
	"net/http"

	"github.com/google/uuid"
)

// loggedRequestID is what the request log says of the path's request id:
// the id when it is one (a UUID, as every request id is), "" when the route
// has none, and "(not a request id)" otherwise. A caller may put anything
// in the path (a subject's email where the id goes), and the log must not
// keep it.
func loggedRequestID(r *http.Request) string {
	id := r.PathValue("id")
	if id == "" || len(id) == 36 && uuid.Validate(id) == nil {
		return id
	}
	return "(not a request id)"
}
