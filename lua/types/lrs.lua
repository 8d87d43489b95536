---@meta
-- bioxen.lrs: xAPI 1.0.3 learning records: statements validated locally, a durable
-- spool, a background sender, queries and voiding, automatic records.

---@class bioxen.lrs
---@field verbs table<string, bioxen.lrs.Verb> ADL verbs (launched, initialized, completed, failed, terminated, attempted, voided, ...) and bioxen's (attached, detached, installed, removed, deployed, destroyed, recorded).
bioxen.lrs = {}

---Automatic records for the Lua halves of bioxen libraries; each is a no-op when
---recording is off. See docs/api/lrs.md.
---@class bioxen.lrs.Hook
---@field enabled fun(): boolean whether recording is on
---@field vm_created fun(vm_id: string, backend: string): integer? token (nil when recording is off)
---@field vm_closed fun(vm_id: string, lifetime_seconds?: number, token?: integer) recorded once per token
---@field vm_collected fun(token: integer) the VM was collected without close
---@field code_executed fun(vm_id: string, code: string, result: table)
---@field function_called fun(vm_id: string, name: string, result: table) a `vm:call`
---@field session_attached fun(session: string, target: string)
---@field session_detached fun(session: string, target: string)
---@field package_installed fun(name: string, version: string, target: string, hash?: string)
---@field package_removed fun(name: string, version: string, target: string)
---@field guest_deployed fun(pool: string, guest: string, template: string)
---@field guest_destroyed fun(pool: string, guest: string)
bioxen.lrs.hook = {}

---@class bioxen.lrs.Verb
---@field id string IRI
---@field display table<string, string> language map, e.g. { ["en-US"] = "completed" }

---@class bioxen.lrs.Agent
---@field objectType? "Agent"|"Group"
---@field name? string
---@field mbox? string `mailto:` IRI
---@field mbox_sha1sum? string
---@field openid? string
---@field account? { homePage: string, name: string }
---@field member? bioxen.lrs.Agent[] Groups only

---@class bioxen.lrs.Activity
---@field objectType? "Activity"|"StatementRef"|"Agent"|"Group"
---@field id string IRI (a UUID for a StatementRef)
---@field definition? { name?: table<string,string>, description?: table<string,string>, type?: string, moreInfo?: string, extensions?: table<string, any> }

---@class bioxen.lrs.Result
---@field success? boolean
---@field completion? boolean
---@field response? string
---@field duration? string ISO 8601, e.g. "PT1.5S"
---@field score? { scaled?: number, raw?: number, min?: number, max?: number }
---@field extensions? table<string, any> keys are IRIs

---@class bioxen.lrs.Context
---@field registration? string UUID; defaults to this run's (`lrs.registration()`); `false` leaves it out
---@field instructor? bioxen.lrs.Agent
---@field team? bioxen.lrs.Agent
---@field contextActivities? { parent?: bioxen.lrs.Activity[], grouping?: bioxen.lrs.Activity[], category?: bioxen.lrs.Activity[], other?: bioxen.lrs.Activity[] }
---@field revision? string
---@field platform? string
---@field language? string
---@field statement? { objectType: "StatementRef", id: string }
---@field extensions? table<string, any> keys are IRIs

---@class bioxen.lrs.StatementFields
---@field id? string UUID v4; made by bioxen when left out
---@field actor? bioxen.lrs.Agent defaults to the configured actor
---@field verb string|bioxen.lrs.Verb a name from `lrs.verbs` or a Verb
---@field object string|bioxen.lrs.Activity an IRI string is an Activity
---@field result? bioxen.lrs.Result
---@field context? bioxen.lrs.Context
---@field timestamp? string UTC with milliseconds; defaults to now

---@class bioxen.lrs.Statement: bioxen.lrs.StatementFields
---@field id string
---@field actor bioxen.lrs.Agent
---@field verb bioxen.lrs.Verb
---@field object bioxen.lrs.Activity
---@field timestamp string

---Builds and validates a statement (xAPI 1.0.3). Raises kind "Validation" with
---`field` (e.g. "statement.result.duration") and `rule`.
---@param fields bioxen.lrs.StatementFields
---@return bioxen.lrs.Statement
function bioxen.lrs.statement(fields) end

---Checks a complete statement; raises kind "Validation" naming the field and rule.
---@param statement table
---@return table statement
function bioxen.lrs.validate(statement) end

---Queues statements: each is validated, appended to the spool and synced to disk
---before this returns. Returns the id (or the list of ids for a list).
---@param statements bioxen.lrs.StatementFields|bioxen.lrs.StatementFields[]
---@return string|string[]
function bioxen.lrs.send(statements) end

---Waits until everything queued so far is acknowledged by the LRS. Raises
---"Timeout", "LrsAuth", "LrsConflict", "LrsRejected", "NotConfigured".
---@param timeout? number seconds; waits as long as it takes when nil
---@return true
function bioxen.lrs.flush(timeout) end

---@class bioxen.lrs.Config
---@field endpoint? string e.g. "https://lrs.example.org/xAPI"
---@field auth? { user: string, password: string }|{ token: string }
---@field actor? bioxen.lrs.Agent
---@field verify_tls? boolean default true
---@field record? boolean automatic records (default true)
---@field batch_size? integer statements per POST at most (default 10000; batches are what is pending, up to this and 16 MiB)
---@field max_backoff? number seconds between retries at most (default 2)
---@field exit_timeout? number seconds given to delivery at exit (default 3)
---@field request_timeout? number seconds a POST may take (default 60); a timeout halves later batches
---@field save? boolean also write these settings to the config file
---@field reset? boolean start again from the config file and environment

---Configures the client for this process (settings not given keep their values).
---@param config bioxen.lrs.Config
---@return table settings without secrets
function bioxen.lrs.configure(config) end

---The effective settings (secrets masked).
---@return table
function bioxen.lrs.settings() end

---@class bioxen.lrs.Query
---@field verb? string|bioxen.lrs.Verb a name from `lrs.verbs`, an IRI or a Verb
---@field activity? string IRI
---@field related_activities? boolean
---@field registration? string UUID
---@field agent? bioxen.lrs.Agent
---@field since? string UTC timestamp with milliseconds
---@field until? string UTC timestamp with milliseconds
---@field ascending? boolean
---@field limit? integer statements in all (all of them when nil)
---@field page_size? integer statements per request (default 500)

---Queries the LRS, following `more` links. The list's `more` field is the next
---page's link when `limit` stopped it early.
---@param q? bioxen.lrs.Query
---@return table[]|{ more: string? }
function bioxen.lrs.query(q) end

---One statement by id; nil when the LRS has none (or it was voided, unless `voided`).
---@param id string
---@param opts? { voided: boolean }
---@return table?
function bioxen.lrs.get(id, opts) end

---Voids a statement: queues a "voided" statement referring to it. Returns its id.
---@param id string
---@param fields? bioxen.lrs.StatementFields extra fields (actor, context...)
---@return string
function bioxen.lrs.void(id, fields) end

---Switches automatic records on or off for this process; returns whether they are on.
---@param on? boolean
---@return boolean
function bioxen.lrs.record(on) end

---The context registration (UUID) shared by every statement of this run.
---@return string
function bioxen.lrs.registration() end

---@class bioxen.lrs.Status
---@field endpoint string?
---@field pending integer statements in the spool not yet acknowledged
---@field oldest string? timestamp of the oldest pending statement
---@field rejected integer statements the LRS refused for good
---@field last_error table? { kind, message, status? }
---@field stopped boolean delivery stopped (bad credentials, unexpected answer)
---@field sent integer statements acknowledged by this process
---@field recording boolean
---@field registration string
---@field spool string folder

---@return bioxen.lrs.Status
function bioxen.lrs.status() end

---The last `n` statements waiting in the spool, oldest first.
---@param n? integer default 10
---@return table[]
function bioxen.lrs.pending(n) end

---Statements the LRS refused for good: { rejected_at, status, reason, statement }.
---@return table[]
function bioxen.lrs.rejected() end

---Whether a string is an ISO 8601 duration.
---@param s string
---@return boolean
function bioxen.lrs.is_duration(s) end

---The actor used when none is configured: the local user, as an account on this host.
---@return bioxen.lrs.Agent
function bioxen.lrs.default_actor() end
