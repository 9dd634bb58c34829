// A typed client over the types openapi-typescript generates from
// openapi/openapi.json: if the spec's shapes change, this stops compiling.
import type { components, paths } from "./frontpage";

type Schemas = components["schemas"];
type Json<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends {
  responses: { 200: { content: { "application/json": infer Body } } };
}
  ? Body
  : never;

export type ArticlePage = Json<"/api/v1/articles/{id_or_slug}", "get">;
export type ArticleList = Json<"/api/v1/articles", "get">;
export type Ranking = Json<"/api/v1/ranking", "get">;
export type Recommendations = Json<"/api/v1/recommendations", "get">;
export type Problem = Schemas["Problem"];

async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url, { headers: { accept: "application/json" } });
  if (!response.ok) {
    const problem = (await response.json()) as Problem;
    throw new Error(`${problem.status} ${problem.title}: ${problem.detail}`);
  }
  return (await response.json()) as T;
}

/** What the seed page needs, in one request. */
export async function articlePage(base: string, slug: string, reader: string) {
  const page = await getJson<ArticlePage>(
    `${base}/api/v1/articles/${encodeURIComponent(slug)}?include=related,ranking,recommendations&reader=${reader}`,
  );
  const article = page.data;
  const breadcrumb: string[] = article.breadcrumb.map((crumb) => crumb.name);
  const veryGood: number | undefined = article.stats.reactions["very_good"];
  const related: string[] = (article.related ?? []).map((item) => item.article.title);
  const ranking: number[] = (article.ranking ?? []).map((item) => item.rank);
  const strategy = page.meta.recommendations?.strategy;
  return { title: article.title, breadcrumb, veryGood, related, ranking, strategy };
}

export async function search(base: string, q: string): Promise<string[]> {
  const list = await getJson<ArticleList>(`${base}/api/v1/articles?q=${encodeURIComponent(q)}`);
  return list.data.map((item) => `${item.title}: ${item.search?.snippet ?? ""}`);
}

export async function mostRead(base: string): Promise<Ranking["data"]> {
  return (await getJson<Ranking>(`${base}/api/v1/ranking?window=24h&metric=views`)).data;
}

export async function forReader(base: string, reader: string): Promise<Recommendations> {
  return getJson<Recommendations>(`${base}/api/v1/recommendations?reader=${reader}`);
}
