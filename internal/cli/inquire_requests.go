package cli

import (
	"github.com/spf13/cobra"
)

// runInquireRequests answers every request file of the folder requests
// with a response file in responses (posbridge inquire --requests DIR
// --responses DIR).
func runInquireRequests(cmd *cobra.Command, app *App, requests, responses string) error {
	return usageErr("inquire --requests is not built yet")
}
