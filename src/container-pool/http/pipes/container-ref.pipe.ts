import { Injectable, PipeTransform } from '@nestjs/common';
import { invalidRequest } from '../http-errors';

const FULL_ID = /^[0-9a-f]{64}$/;
const ID_PREFIX = /^[0-9a-f]{12,63}$/;
const HEX = /^[0-9a-fA-F]+$/;
/** Docker's container name grammar. */
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$/;

/** What a container reference is, or null when it is none of the accepted forms. */
export function containerRefKind(ref: string): 'id' | 'prefix' | 'name' | null {
  if (FULL_ID.test(ref)) return 'id';
  if (ID_PREFIX.test(ref)) return 'prefix';
  // A hex string too short or too long to be an id prefix is a mistyped id, not a name.
  if (HEX.test(ref)) return null;
  return NAME.test(ref) ? 'name' : null;
}

/** `:id` of DELETE /containers/:id: a full 64-hex id, a prefix of at least 12 hex digits, or a name. */
@Injectable()
export class ContainerRefPipe implements PipeTransform<string, string> {
  transform(value: string): string {
    if (typeof value !== 'string' || containerRefKind(value) === null) {
      throw invalidRequest([
        {
          field: 'id',
          message:
            'id must be a full container id (64 hex digits), a unique id prefix of at least 12 hex ' +
            'digits, or a container name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)',
        },
      ]);
    }
    return value;
  }
}
