package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/imports"
	"github.com/posbridge/posbridge/internal/inquiry"
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
	res := &requestsResult{Files: []inquiry.Outcome{}}
	log := app.logger()
	err = app.recordRun(ctx, d, "inquire requests", false, func(id int64) (any, bool, error) {
		o.RunID = id
		err := inquiry.AnswerFolder(ctx, d, requests, o, func(out inquiry.Outcome) {
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
		return res, res.Errors > 0, err
	})
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
