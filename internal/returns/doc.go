// Package returns keeps the return expectations of an external OMS
// partner (import returns), records the QC result of each returned item,
// raising stock for the items that pass, and queues the return updates
// that export return-updates sends back.
package returns
