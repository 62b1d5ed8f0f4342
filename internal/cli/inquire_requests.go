package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/imports"
	"github.com/posbridge/posbridge/internal/inquiry"
	"github.com/posbridge/posbridge/internal/ledger"
)

// requestsResult is what a run of inquire --requests records and prints.
type requestsResult struct {
	Answered int               `json:"answered"`
	NotFound int               `json:"not_found"`
	Errors   int               `json:"errors"`
	Waiting  int               `json:"waiting"`
	Files    []inquiry.Outcome `json:"files"`
}

// runInquireRequests answers every request file of the folder requests
// with a response file in responses (posbridge inquire --requests DIR
// --responses DIR). A request that is malformed gets an error response
// and makes the run exit 3, like rejected records.
func runInquireRequests(cmd *cobra.Command, app *App, requests, responses string) error {
	ctx := cmd.Context()
	if responses == "" {
		return usageErr("inquire --requests needs --responses: the folder the response files go to")
	}
	cfg, d, err := app.ConfigDB(ctx)
	if err != nil {
		return err
	}
	o := inquiry.RequestOptions{Responses: responses, Folders: imports.Folders{MinAge: cfg.Import.MinAge},
		Source: cfg.Export.Source, Company: cfg.Company.Number}
	if o.RunID, err = app.startRun(ctx, d, "inquire requests"); err != nil {
		return err
	}
	res := &requestsResult{Files: []inquiry.Outcome{}}
	log := app.logger()
	err = inquiry.AnswerFolder(ctx, d, requests, o, func(out inquiry.Outcome) {
		res.Files = append(res.Files, out)
		switch {
		case out.Waiting:
			res.Waiting++
			log.Info(fmt.Sprintf("%s: left for the next run: changed less than %s ago (import.min_age)", out.Request, cfg.Import.MinAge))
			return
		case out.Status == inquiry.StatusError:
			res.Errors++
			log.Error(fmt.Sprintf("%s: %s; error response %s, request moved to %s", out.Request, out.Error, out.Response, out.MovedTo))
		case out.Status == inquiry.StatusNotFound:
			res.NotFound++
		default:
			res.Answered++
		}
		fmt.Fprintf(app.Out, "%s: %s %s, %d records -> %s\n", out.Request, out.Type, out.Status, out.Records, out.Response)
	})
	status := ledger.RunOK
	switch {
	case err != nil:
		status = ledger.RunFailed
	case res.Errors > 0:
		status = ledger.RunRejects
	}
	if endErr := ledger.EndRun(context.WithoutCancel(ctx), d, o.RunID, status, res, err); endErr != nil && err == nil {
		err = endErr
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(app.Out, "inquire requests %s: %d answered, %d not found, %d errors, %d waiting\n",
		requests, res.Answered, res.NotFound, res.Errors, res.Waiting)
	if res.Errors > 0 {
		return fmt.Errorf("%d request file(s) were malformed; their responses say why: %w", res.Errors, errRejected)
	}
	return nil
}
