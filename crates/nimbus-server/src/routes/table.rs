//! The documented route table: each route is registered together with the description of its
//! operations, so the router and the OpenAPI document (`crate::openapi`) are built from one
//! list and cannot disagree. A route cannot be added without its [`Doc`].

use std::borrow::Cow;

use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter};
use schemars::{JsonSchema, Schema, SchemaGenerator};

use crate::auth::access::{Access, Exemptions};
use crate::state::AppState;

/// Renders a type's JSON Schema into a generator (which collects its named definitions).
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// The [`SchemaFn`] of `T`.
fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// What a request body or a success answer carries.
#[derive(Clone, Copy)]
pub enum Content {
    /// JSON described by a schema.
    Json(SchemaFn),
    /// JSON of any shape (an object whose shape the docs page describes).
    AnyJson,
    /// Bytes of the given media type.
    Bytes(&'static str),
    /// No body.
    Empty,
}

/// The type of a query parameter.
#[derive(Clone, Copy)]
pub enum ParamType {
    /// A string.
    String,
    /// An integer.
    Integer,
    /// `true` or `false`.
    Boolean,
}

/// One query parameter.
#[derive(Clone, Copy)]
pub struct QueryParam {
    /// Its name.
    pub name: &'static str,
    /// Its type.
    pub kind: ParamType,
    /// What it does.
    pub description: &'static str,
}

/// One success answer.
#[derive(Clone, Copy)]
pub struct Success {
    /// Its status.
    pub status: u16,
    /// What it means.
    pub description: &'static str,
    /// What it carries.
    pub content: Content,
}

/// The description of one operation (one method on one path).
#[derive(Clone)]
pub struct Doc {
    /// The unique `operationId`.
    pub id: Cow<'static, str>,
    /// One line.
    pub summary: &'static str,
    /// The request body, if the operation reads one.
    pub body: Option<Content>,
    /// Whether the body may be left out.
    pub body_optional: bool,
    /// Its query parameters.
    pub query: Vec<QueryParam>,
    /// Its success answers (errors are always the catalog envelope).
    pub answers: Vec<Success>,
    /// How it takes the admin token (the auth guard reads this).
    pub access: Access,
}

/// Starts a [`Doc`]; without further calls the operation answers 200 with JSON.
pub fn doc(id: impl Into<Cow<'static, str>>, summary: &'static str) -> Doc {
    Doc {
        id: id.into(),
        summary,
        body: None,
        body_optional: false,
        query: Vec::new(),
        answers: Vec::new(),
        access: Access::Token,
    }
}

impl Doc {
    /// A required JSON body of type `T`.
    pub fn json<T: JsonSchema>(mut self) -> Self {
        self.body = Some(Content::Json(schema_of::<T>));
        self
    }

    /// An optional JSON body of type `T` (empty means the defaults).
    pub fn optional_json<T: JsonSchema>(mut self) -> Self {
        self.body_optional = true;
        self.json::<T>()
    }

    /// A required JSON body described by `schema`.
    pub fn json_schema(mut self, schema: SchemaFn) -> Self {
        self.body = Some(Content::Json(schema));
        self
    }

    /// A required JSON body of any shape (the docs page describes it).
    pub fn any_json_body(mut self) -> Self {
        self.body = Some(Content::AnyJson);
        self
    }

    /// The body may be left out.
    pub fn optional_body(mut self) -> Self {
        self.body_optional = true;
        self
    }

    /// A body of raw bytes of `media_type`.
    pub fn bytes(mut self, media_type: &'static str) -> Self {
        self.body = Some(Content::Bytes(media_type));
        self
    }

    /// A query parameter.
    pub fn query(mut self, name: &'static str, kind: ParamType, description: &'static str) -> Self {
        self.query.push(QueryParam { name, kind, description });
        self
    }

    /// A success answer carrying JSON of type `T`.
    pub fn answers<T: JsonSchema>(self, status: u16, description: &'static str) -> Self {
        self.answer(status, description, Content::Json(schema_of::<T>))
    }

    /// A success answer carrying `content`.
    pub fn answer(mut self, status: u16, description: &'static str, content: Content) -> Self {
        self.answers.push(Success { status, description, content });
        self
    }

    /// Needs neither a credential nor the origin policy.
    pub fn open(mut self) -> Self {
        self.access = Access::Open;
        self
    }

    /// Takes the token in its body, not in a header.
    pub fn token_in_body(mut self) -> Self {
        self.access = Access::TokenInBody;
        self
    }

    /// A WebSocket upgrade whose socket may authenticate with its first frame instead.
    pub fn token_in_first_frame(mut self) -> Self {
        self.access = Access::TokenInFirstFrame;
        self
    }

    /// The declared answers, or the default: 200 with JSON.
    pub fn successes(&self) -> Vec<Success> {
        if self.answers.is_empty() {
            return vec![Success { status: 200, description: "OK", content: Content::AnyJson }];
        }
        self.answers.clone()
    }
}

/// One documented operation of the table.
pub struct Operation {
    /// The HTTP method.
    pub method: Method,
    /// The path, in the router's syntax (`{name}`, `{*rest}`).
    pub path: String,
    /// Its description.
    pub doc: Doc,
}

/// The methods of one path with their handlers and descriptions.
pub struct Methods {
    router: MethodRouter<AppState>,
    docs: Vec<(Method, Doc)>,
}

impl Default for Methods {
    fn default() -> Self {
        Self { router: MethodRouter::new(), docs: Vec::new() }
    }
}

macro_rules! method {
    ($name:ident, $method:ident) => {
        #[doc = concat!("Adds the `", stringify!($method), "` handler of this path with its description.")]
        pub fn $name<H, T>(mut self, handler: H, doc: Doc) -> Self
        where
            H: Handler<T, AppState>,
            T: 'static,
        {
            self.router = self.router.on(MethodFilter::$method, handler);
            self.docs.push((Method::$method, doc));
            self
        }
    };
}

impl Methods {
    method!(get, GET);
    method!(post, POST);
    method!(put, PUT);
    method!(patch, PATCH);
    method!(delete, DELETE);

    /// One handler for every method; `docs` describes the methods it is documented for.
    pub fn any<H, T>(handler: H, docs: Vec<(Method, Doc)>) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        Self { router: axum::routing::any(handler), docs }
    }
}

/// Starts a path's methods with `GET`.
pub fn get<H: Handler<T, AppState>, T: 'static>(handler: H, doc: Doc) -> Methods {
    Methods::default().get(handler, doc)
}

/// Starts a path's methods with `POST`.
pub fn post<H: Handler<T, AppState>, T: 'static>(handler: H, doc: Doc) -> Methods {
    Methods::default().post(handler, doc)
}

/// Starts a path's methods with `PUT`.
pub fn put<H: Handler<T, AppState>, T: 'static>(handler: H, doc: Doc) -> Methods {
    Methods::default().put(handler, doc)
}

/// Starts a path's methods with `DELETE`.
pub fn delete<H: Handler<T, AppState>, T: 'static>(handler: H, doc: Doc) -> Methods {
    Methods::default().delete(handler, doc)
}

/// Makes the service of a path that needs the server's state to exist (`/mcp`).
type Build = Box<dyn FnOnce(&AppState) -> MethodRouter<AppState>>;

/// The router under construction and the operations it serves.
#[derive(Default)]
pub struct Table {
    router: Router<AppState>,
    /// Paths whose service is made once the state is known.
    deferred: Vec<(String, Build)>,
    operations: Vec<Operation>,
}

impl Table {
    /// Registers `path` with its methods.
    pub fn at(mut self, path: &str, methods: Methods) -> Self {
        self.router = self.router.route(path, methods.router);
        self.document(path, methods.docs)
    }

    /// Registers `path` with a service made from the server's state, answering the methods
    /// `docs` describes.
    pub fn at_service<S>(mut self, path: &str, make: fn(&AppState) -> S, docs: Vec<(Method, Doc)>) -> Self
    where
        S: tower::Service<axum::extract::Request, Error = std::convert::Infallible> + Clone + Send + Sync + 'static,
        S::Response: axum::response::IntoResponse + 'static,
        S::Future: Send + 'static,
    {
        let filter =
            docs.iter().filter_map(|(method, _)| MethodFilter::try_from(method.clone()).ok()).reduce(MethodFilter::or);
        let build: Build = Box::new(move |state| match filter {
            Some(filter) => MethodRouter::new().on_service(filter, make(state)),
            None => MethodRouter::new(),
        });
        self.deferred.push((path.to_owned(), build));
        self.document(path, docs)
    }

    fn document(mut self, path: &str, docs: Vec<(Method, Doc)>) -> Self {
        self.operations.extend(docs.into_iter().map(|(method, doc)| Operation { method, path: path.to_owned(), doc }));
        self
    }

    /// The router, for the server whose state is `state`.
    pub fn into_router(self, state: &AppState) -> Router<AppState> {
        self.deferred.into_iter().fold(self.router, |router, (path, build)| router.route(&path, build(state)))
    }

    /// The operations.
    pub fn into_operations(self) -> Vec<Operation> {
        self.operations
    }

    /// What the auth guard needs of the operations: the open ones and those that take the
    /// token in their body.
    pub fn exemptions(&self) -> Exemptions {
        Exemptions::new(self.operations.iter().map(|op| (&op.method, op.path.as_str(), op.doc.access)))
    }
}
